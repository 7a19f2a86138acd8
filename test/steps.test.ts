/**
 * Durable steps and continuation at the domain level, on the real local
 * Blobs server, with a clock the test moves: every storage operation takes
 * 150 ms of it, so a job of 20 steps outlives an invocation limit of 2 s
 * several times over, the same way on every run.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createAccount, readAccount, readLedger } from '../lib/credits/index.ts'
import { cancelJob, getJob, readFeed } from '../lib/jobs/read.ts'
import { readState } from '../lib/jobs/state.ts'
import { stepKey } from '../lib/jobs/steps.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { type WorkerOutcome, runJob } from '../lib/jobs/worker.ts'
import { defineJob } from '../lib/kinds/define.ts'
import { peekLock } from '../lib/locks/lock.ts'
import { reap } from '../lib/reaper/reap.ts'
import { runDispatcher } from '../lib/schedule/dispatcher.ts'
import { dueHandlers } from '../lib/schedule/handlers.ts'
import { assetKeys, keys } from '../lib/storage/keys.ts'
import type { Deps } from '../lib/core/deps.ts'
import type { JobEvent } from '../lib/core/types.ts'
import { type BlobPort, StorageUnavailableError } from '../lib/storage/port.ts'
import { useBlobs } from './support/blobs.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import { MAX_INDEX_BATCHES, indexDocuments } from '../lib/kinds/index-documents.ts'
import type { JobContext } from '../lib/kinds/define.ts'
import { manualClock, testDeps } from './support/deps.ts'
import { hookedStore, interceptedStore } from './support/hooked-store.ts'

const blobs = useBlobs()

const OP_MS = 150
const LIMIT_MS = 2_000

/** How often each step's fn ran, by job and step name. */
const runs = new Map<string, number>()
const ran = (jobId: string, name: string) => runs.set(`${jobId}/${name}`, (runs.get(`${jobId}/${name}`) ?? 0) + 1)

/** Steps `a`, `b`, `c`; attempt 1 fails after `b`. Retried: attempt 2 runs only `c`. */
const flakySteps = defineJob({
  kind: 'flaky_steps',
  cost: 3,
  input: z.strictObject({}),
  retry: { maxAttempts: 2, backoff: { baseMs: 1000, capMs: 1000 } },
  async run({ jobId, step, attempt }) {
    const a = await step('a', () => (ran(jobId, 'a'), { attempt }))
    const b = await step('b', () => (ran(jobId, 'b'), { attempt }))
    if (attempt === 1) throw new Error('connection reset by db.internal:5432')
    const c = await step('c', () => (ran(jobId, 'c'), { attempt }))
    return { a, b, c }
  },
})

/** Handler mistakes: a step name used twice, a result JSON cannot hold. */
const misuse = defineJob({
  kind: 'misuse',
  cost: 3,
  input: z.strictObject({ mistake: z.enum(['repeat', 'not_json']) }),
  async run({ input, step }) {
    await step('one', () => 1)
    if (input.mistake === 'repeat') await step('one', () => 2)
    return step('two', () => new Map([['x', 1]]))
  },
})

/** In its second step, a duplicate delivery of the worker call arrives (`onStep`). */
let onStep: ((jobId: string) => Promise<void>) | null = null
const relay = defineJob({
  kind: 'relay',
  cost: 3,
  input: z.strictObject({ steps: z.number().int() }),
  async run({ jobId, step, input }) {
    const results: number[] = []
    for (let i = 0; i < input.steps; i++) {
      results.push(
        await step(`s${i}`, async () => {
          ran(jobId, `s${i}`)
          if (i === 1) await onStep?.(jobId)
          return i * 10
        }),
      )
    }
    return { results }
  },
})

/**
 * A long step `slow` that runs beside other steps. Its first run is held until
 * a second run of it starts (the bug: two runs at once) or, failing that, a
 * while later; later runs return at once.
 */
const slowRuns = { starts: 0, inFlight: 0, maxInFlight: 0 }
let clockOfTest: { advance(ms: number): void } | null = null
async function slowStep() {
  slowRuns.starts++
  slowRuns.inFlight++
  slowRuns.maxInFlight = Math.max(slowRuns.maxInFlight, slowRuns.inFlight)
  if (slowRuns.starts === 1) {
    let polls = 0
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (slowRuns.starts > 1 || ++polls > 200) resolve(clearInterval(poll))
      }, 5)
    })
  }
  slowRuns.inFlight--
  return 'slow'
}
/** Parallel branches of steps: `slow`, and `b1` then `b2`; `b1` takes the invocation past its limit. */
const parallelSteps = defineJob({
  kind: 'parallel_steps',
  cost: 1,
  input: z.strictObject({}),
  async run({ step }) {
    await step('first', () => 1)
    const [slow, b] = await Promise.all([
      step('slow', slowStep),
      (async () => {
        await step('b1', () => (clockOfTest?.advance(LIMIT_MS), 'b1'))
        return step('b2', () => 'b2')
      })(),
    ])
    return { slow, b }
  },
})
/** `slow` beside a step that fails attempt 1: the retry must not run `slow` while attempt 1's run goes on. */
const parallelRetry = defineJob({
  kind: 'parallel_retry',
  cost: 1,
  input: z.strictObject({}),
  retry: { maxAttempts: 2, backoff: { baseMs: 1000, capMs: 1000 } },
  async run({ step, attempt }) {
    const [slow, flaky] = await Promise.all([
      step('slow', slowStep),
      step('flaky', () => {
        if (attempt === 1) throw new Error('connection reset')
        return 'ok'
      }),
    ])
    return { slow, flaky }
  },
})

/** A handler that catches around its steps: it goes on past a failed batch, or tries a step again. */
const bestEffort = defineJob({
  kind: 'best_effort',
  cost: 1,
  input: z.strictObject({ style: z.enum(['skip', 'try_again']) }),
  async run({ step, input }) {
    const done: number[] = []
    let skipped = 0
    for (let i = 0; i < 10; i++) {
      for (let tries = 0; tries < (input.style === 'skip' ? 1 : 3); tries++) {
        try {
          done.push(await step(`s${i}`, () => (clockOfTest?.advance(LIMIT_MS / 4), i)))
          break
        } catch {
          if (input.style === 'skip') skipped++
        }
      }
    }
    return { done, skipped }
  },
})

/** One step more than a job may use. */
const manySteps = defineJob({
  kind: 'many_steps',
  cost: 1,
  input: z.strictObject({}),
  async run({ step }) {
    for (let i = 0; i <= 1000; i++) await step(`s${i}`, () => i)
    return null
  },
})

/** A step saves a file; attempt 1 fails after it: attempt 2 replays the step and finishes. */
const renderSteps = defineJob({
  kind: 'render_steps',
  cost: 1,
  input: z.strictObject({}),
  makesAssets: true,
  retry: { maxAttempts: 2, backoff: { baseMs: 1000, capMs: 1000 } },
  async run({ step, saveAsset, attempt }) {
    const frame = await step('frame-0', () => saveAsset({ filename: 'frame-0.png', contentType: 'image/png', data: new Uint8Array([1, 2, 3]) }))
    if (attempt === 1) throw new Error('connection reset')
    return { frame }
  },
})

let storeNo = 0
async function setup(wrap?: (store: BlobPort) => BlobPort) {
  const clock = manualClock(Date.UTC(2026, 11, 1, 12, 0, 10))
  const invoked: string[] = []
  /** Worker calls that fail from now on (lost before delivery). */
  let failCalls = 0
  const hooked = hookedStore(blobs.port(`steps-${++storeNo}`), () => clock.advance(OP_MS))
  const store = wrap ? wrap(hooked) : hooked
  const deps: Deps = testDeps(store, {
    clock,
    kinds: [flakySteps, misuse, relay, parallelSteps, parallelRetry, bestEffort, renderSteps],
    settings: { invocationLimitMs: LIMIT_MS },
    invokeWorker: async (jobId) => {
      if (failCalls-- > 0) throw new Error('worker answered 502')
      invoked.push(jobId)
    },
  })
  await createAccount(deps.store, clock, 'acct', 100)
  const submit = async (kind: string, input: unknown) => {
    const { body } = await submitJob(deps, 'acct', { kind, input }, null)
    expect(invoked.splice(0)).toEqual([body.jobId])
    return body.jobId
  }
  /** Runs invocations as the worker calls are made, until none is made: the outcomes in order. */
  const chain = async (jobId: string, between?: (outcome: WorkerOutcome) => Promise<void>) => {
    const outcomes: WorkerOutcome[] = []
    for (let next: string | undefined = jobId; next; next = invoked.shift()) {
      expect(next).toBe(jobId)
      outcomes.push(await runJob(deps, jobId))
      await between?.(outcomes.at(-1)!)
    }
    return outcomes
  }
  const events = async (jobId: string) => (await readFeed(deps, 'acct', jobId, { after: 0, limit: 1000, waitSeconds: 0 })).events
  const ledger = async () => (await readLedger(deps.store, 'acct')).filter((entry) => entry.type === 'charge' || entry.type === 'refund')
  const balance = async () => (await readAccount(deps.store, 'acct'))!.record.balance
  const failNextCalls = (n: number) => void (failCalls = n)
  clockOfTest = clock
  return { clock, deps, invoked, failNextCalls, submit, chain, events, ledger, balance, status: (jobId: string) => getJob(deps, 'acct', jobId) }
}

const documents = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `doc-${i}`, text: `Document ${i} mentions durable steps and term${i % 3}.` }))
const gapFree = (events: JobEvent[]) => expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1))

describe('the index kind across invocations', () => {
  it('a 20-step job crosses at least 5 invocations: each batch indexed once, one gap-free log, one charge, the lock held throughout', async () => {
    const t = await setup()
    const jobId = await t.submit('index', { vault: 'notes', documents: documents(20), batchSize: 1 })
    const lockKey = 'acct:index:notes'
    const outcomes = await t.chain(jobId, async (outcome) => {
      if (outcome !== 'continued') return
      // Between invocations: still running for clients, the lock still the job's, for long enough.
      expect(await t.status(jobId)).toMatchObject({ status: 'running', attempt: 1 })
      const lock = (await peekLock(t.deps.store, lockKey))!.record
      expect(lock).toMatchObject({ state: 'held', jobId })
      expect(lock.state === 'held' && lock.expiresAt).toBeGreaterThanOrEqual(t.clock.now() + t.deps.settings.queuedTimeoutMs)
    })
    expect(outcomes.at(-1)).toBe('complete')
    expect(outcomes.slice(0, -1).every((outcome) => outcome === 'continued')).toBe(true)
    expect(outcomes.length).toBeGreaterThanOrEqual(5)

    const events = await t.events(jobId)
    gapFree(events)
    const types = events.map((e) => e.type)
    expect(types.filter((type) => type === 'started')).toHaveLength(1)
    expect(events.filter((e) => e.type === 'continued').map((e) => e.data)).toEqual(outcomes.slice(1).map((_, i) => ({ invocation: i + 2 })))
    // Each batch's fn ran once: its progress line once, its step stored once, in order.
    const indexing = events.filter((e) => e.type === 'progress' && String((e.data as { message: string }).message).startsWith('Indexing'))
    expect(indexing.map((e) => (e.data as { message: string }).message)).toEqual(Array.from({ length: 20 }, (_, i) => `Indexing documents ${i + 1}-${i + 1} of 20`))
    expect(events.filter((e) => e.type === 'step_completed').map((e) => e.data)).toEqual(Array.from({ length: 20 }, (_, i) => ({ name: `batch-${i}` })))
    expect(types.at(-1)).toBe('done')

    const status = await t.status(jobId)
    expect(status).toMatchObject({
      status: 'complete',
      attempt: 1,
      steps: { completed: 20, invocation: outcomes.length },
      result: { vault: 'notes', documents: 20, batches: 20, terms: 7 },
    })
    expect(status.result).toMatchObject({ topTerms: expect.arrayContaining([{ term: 'durable', documents: 20 }]) })
    expect(status.assets.map((a) => a.filename)).toEqual(['index.json'])
    expect((await t.ledger()).map((entry) => entry.type)).toEqual(['charge'])
    expect(await t.balance()).toBe(98)
    expect((await peekLock(t.deps.store, lockKey))?.record.state).toBe('released')
  })

  it('a duplicate call finds the job claimed and leaves; a late one finds it finished', async () => {
    const t = await setup()
    const jobId = await t.submit('relay', { steps: 6 })
    const duplicates: WorkerOutcome[] = []
    onStep = async (id) => void duplicates.push(await runJob(t.deps, id))
    try {
      const outcomes = await t.chain(jobId)
      expect(outcomes.at(-1)).toBe('complete')
      expect(outcomes.length).toBeGreaterThanOrEqual(2)
    } finally {
      onStep = null
    }
    expect(duplicates).toEqual(['already_claimed'])
    const lastSeq = (await t.status(jobId)).lastSeq
    expect(await runJob(t.deps, jobId)).toBe('already_claimed')
    expect((await t.status(jobId)).lastSeq).toBe(lastSeq)
    for (let i = 0; i < 6; i++) expect(runs.get(`${jobId}/s${i}`)).toBe(1)
    expect((await t.status(jobId)).result).toEqual({ results: [0, 10, 20, 30, 40, 50] })
  })

  it('a lost call: the reaper leaves the job between invocations alone, the dispatcher calls again, and the job goes on', async () => {
    const t = await setup()
    const jobId = await t.submit('relay', { steps: 30 })
    t.failNextCalls(1)
    expect(await runJob(t.deps, jobId)).toBe('continued')
    expect(t.invoked).toEqual([]) // the call was lost
    const handedOverAt = (await readState(t.deps.store, jobId))!.state.handedOverAt!
    // Past the heartbeat timeout: a running job with a silent worker would be reaped now.
    t.clock.set(handedOverAt + t.deps.settings.heartbeatTimeoutMs + 1000)
    await reap(t.deps)
    expect((await t.status(jobId)).status).toBe('running')
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([jobId])
    expect((await t.chain(t.invoked.shift()!)).at(-1)).toBe('complete')
    for (let i = 0; i < 30; i++) expect(runs.get(`${jobId}/s${i}`)).toBe(1)
    expect(await t.status(jobId)).toMatchObject({ status: 'complete', steps: { completed: 30 } })
    gapFree(await t.events(jobId))
  })

  it('a chain that died is reaped as continuation_never_started, refunded, its lock freed', async () => {
    const t = await setup()
    const jobId = await t.submit('index', { vault: 'dead', documents: documents(30), batchSize: 1 })
    t.failNextCalls(100)
    expect(await runJob(t.deps, jobId)).toBe('continued')
    const handedOverAt = (await readState(t.deps.store, jobId))!.state.handedOverAt!
    t.clock.set(handedOverAt + t.deps.settings.queuedTimeoutMs + 1000)
    await reap(t.deps)
    expect(await t.status(jobId)).toMatchObject({ status: 'failed', error: { code: 'continuation_never_started' } })
    expect((await t.ledger()).map((entry) => entry.type)).toEqual(['charge', 'refund'])
    expect((await peekLock(t.deps.store, 'acct:index:dead'))?.record.state).toBe('released')
    // A call that comes after all finds the job finished.
    expect(await runJob(t.deps, jobId)).toBe('already_claimed')
  })

  it('cancel between invocations ends the job at once; the next invocation finds it canceled', async () => {
    const t = await setup()
    const jobId = await t.submit('index', { vault: 'cancel', documents: documents(30), batchSize: 1 })
    expect(await runJob(t.deps, jobId)).toBe('continued')
    const canceled = await cancelJob(t.deps, 'acct', jobId)
    expect(canceled).toMatchObject({ status: 200, job: { status: 'canceled' } })
    expect(await runJob(t.deps, t.invoked.shift()!)).toBe('already_claimed')
    const events = await t.events(jobId)
    gapFree(events)
    expect(events.at(-1)?.type).toBe('canceled')
    expect((await peekLock(t.deps.store, 'acct:index:cancel'))?.record.state).toBe('released')
  })

  it('past retention the job goes with its stored steps', async () => {
    const t = await setup()
    const jobId = await t.submit('relay', { steps: 3 })
    expect((await t.chain(jobId)).at(-1)).toBe('complete')
    expect((await t.deps.store.list(keys.stepsPrefix(jobId))).keys).toHaveLength(3)
    t.clock.advance(t.deps.settings.retentionMs + 20 * 60_000)
    await reap(t.deps)
    expect(await readState(t.deps.store, jobId)).toBeNull()
    expect((await t.deps.store.list(keys.stepsPrefix(jobId))).keys).toEqual([])
  })
})

describe('steps', () => {
  it('survive a retry: the next attempt runs only the steps that did not complete', async () => {
    const t = await setup()
    const jobId = await t.submit('flaky_steps', {})
    expect(await runJob(t.deps, jobId)).toBe('complete')
    expect(['a', 'b', 'c'].map((name) => runs.get(`${jobId}/${name}`))).toEqual([1, 1, 1])
    // The stored results are attempt 1's for a and b.
    expect(await t.status(jobId)).toMatchObject({ status: 'complete', attempt: 2, result: { a: { attempt: 1 }, b: { attempt: 1 }, c: { attempt: 2 } } })
    const types = (await t.events(jobId)).map((e) => e.type)
    expect(types).toEqual(['started', 'step_completed', 'step_completed', 'attempt_failed', 'retry_scheduled', 'started', 'step_completed', 'done'])
  })

  it('a step whose result was not stored runs again in the next attempt, and only that step', async () => {
    const clock = manualClock()
    let jobId = ''
    let failures = 1
    const store = interceptedStore(blobs.port(`steps-lost-${++storeNo}`), async (op, key, call) => {
      // The store of b's result fails once (it never lands): the attempt fails after b's fn ran.
      if (op === 'create' && jobId && key === stepKey(jobId, 'b') && failures-- > 0) throw new Error('socket hang up')
      return call()
    })
    const deps = testDeps(store, { clock, kinds: [flakySteps] })
    await createAccount(deps.store, clock, 'acct', 10)
    jobId = (await submitJob(deps, 'acct', { kind: 'flaky_steps', input: {} }, null)).body.jobId
    expect(await runJob(deps, jobId)).toBe('complete')
    expect(['a', 'b', 'c'].map((name) => runs.get(`${jobId}/${name}`))).toEqual([1, 2, 1])
    expect((await getJob(deps, 'acct', jobId)).result).toEqual({ a: { attempt: 1 }, b: { attempt: 2 }, c: { attempt: 2 } })
  })

  it('a step name used twice fails the job with step_name_repeated; a result that is not JSON with step_result_not_json', async () => {
    const t = await setup()
    const repeat = await t.submit('misuse', { mistake: 'repeat' })
    expect(await runJob(t.deps, repeat)).toBe('failed')
    expect(await t.status(repeat)).toMatchObject({ status: 'failed', error: { code: 'step_name_repeated', message: expect.stringContaining('"one"') } })
    const notJson = await t.submit('misuse', { mistake: 'not_json' })
    expect(await runJob(t.deps, notJson)).toBe('failed')
    expect(await t.status(notJson)).toMatchObject({ status: 'failed', error: { code: 'step_result_not_json' } })
    expect((await t.deps.store.list(keys.stepsPrefix(notJson))).keys).toHaveLength(1)
  })

  it('the first stored result wins: a step whose result another run stored first returns that one', async () => {
    const clock = manualClock()
    let jobId = ''
    const store = interceptedStore(blobs.port(`steps-race-${++storeNo}`), async (op, key, call) => {
      // Another run of the step stores its result just before ours.
      if (op === 'create' && jobId && key === stepKey(jobId, 's1')) {
        await blobs.port(`steps-race-${storeNo}`).create(key, JSON.stringify({ name: 's1', result: 'theirs', at: 0 }))
      }
      return call()
    })
    const deps = testDeps(store, { clock, kinds: [relay] })
    await createAccount(deps.store, clock, 'acct', 10)
    jobId = (await submitJob(deps, 'acct', { kind: 'relay', input: { steps: 3 } }, null)).body.jobId
    expect(await runJob(deps, jobId)).toBe('complete')
    expect((await getJob(deps, 'acct', jobId)).result).toEqual({ results: [0, 'theirs', 20] })
    // The step the other run stored is not ours to announce.
    const feed = await readFeed(deps, 'acct', jobId, { after: 0, limit: 100, waitSeconds: 0 })
    expect(feed.events.filter((e) => e.type === 'step_completed').map((e) => e.data)).toEqual([{ name: 's0' }, { name: 's2' }])
  })

  it('parallel steps: a hand-over waits for a step still running, so the next invocation does not run it again', async () => {
    Object.assign(slowRuns, { starts: 0, inFlight: 0, maxInFlight: 0 })
    const t = await setup()
    const jobId = await t.submit('parallel_steps', {})
    const outcomes = await t.chain(jobId)
    expect(outcomes[0]).toBe('continued')
    expect(outcomes.at(-1)).toBe('complete')
    expect(slowRuns).toMatchObject({ starts: 1, maxInFlight: 1 })
    expect(await t.status(jobId)).toMatchObject({ status: 'complete', result: { slow: 'slow', b: 'b2' } })
  })

  it('parallel steps: a failed attempt waits for a sibling step still running before the retry', async () => {
    Object.assign(slowRuns, { starts: 0, inFlight: 0, maxInFlight: 0 })
    const t = await setup()
    const jobId = await t.submit('parallel_retry', {})
    expect(await runJob(t.deps, jobId)).toBe('complete')
    expect(slowRuns).toMatchObject({ starts: 1, maxInFlight: 1 })
    expect(await t.status(jobId)).toMatchObject({ status: 'complete', attempt: 2, result: { slow: 'slow', flaky: 'ok' } })
  })

  it.each(['skip', 'try_again'])('a handler that catches around its steps (%s) still hands over: every step runs, the job completes with all of them', async (style) => {
    const t = await setup()
    const jobId = await t.submit('best_effort', { style })
    const outcomes = await t.chain(jobId)
    expect(outcomes.length).toBeGreaterThanOrEqual(2)
    expect(outcomes.slice(0, -1).every((o) => o === 'continued')).toBe(true)
    expect(await t.status(jobId)).toMatchObject({ status: 'complete', result: { done: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], skipped: 0 } })
  })

  it('a cancel accepted while the worker hands over: the next invocation cancels the job and runs no step', async () => {
    let duringHandOver: (() => Promise<void>) | null = null
    const t = await setup((store) => ({
      ...store,
      async replace(key, data, version) {
        const cancel = duringHandOver
        if (cancel && key.startsWith('job/') && /"handedOverAt":\d/.test(data)) {
          duringHandOver = null
          await cancel() // lands first: the hand-over write conflicts and is made again over it
        }
        return store.replace(key, data, version)
      },
    }))
    const jobId = await t.submit('relay', { steps: 20 })
    let cancelAnswer = 0
    duringHandOver = async () => void (cancelAnswer = (await cancelJob(t.deps, 'acct', jobId)).status)
    expect(await runJob(t.deps, jobId)).toBe('continued')
    expect(cancelAnswer).toBe(202)
    const ranBefore = [...runs.entries()].filter(([key]) => key.startsWith(`${jobId}/`))
    expect(await runJob(t.deps, t.invoked.shift()!)).toBe('canceled')
    expect([...runs.entries()].filter(([key]) => key.startsWith(`${jobId}/`))).toEqual(ranBefore)
    expect(await t.status(jobId)).toMatchObject({ status: 'canceled' })
    // Canceled while it ran: the charge stands, as for any running job canceled.
    expect((await t.ledger()).map((entry) => entry.type)).toEqual(['charge'])
  })

  it('stored steps are read up front: one listing per invocation, reads in parallel; retention deletes them a few at a time', async () => {
    const calls = { lists: 0, reads: 0, readsAtOnce: 0, mostReadsAtOnce: 0, deletesAtOnce: 0, mostDeletesAtOnce: 0 }
    const t = await setup((store) => ({
      ...store,
      async list(prefix, options) {
        if (prefix.startsWith('steps/')) calls.lists++
        return store.list(prefix, options)
      },
      async read(key) {
        if (!key.startsWith('steps/')) return store.read(key)
        calls.reads++
        calls.mostReadsAtOnce = Math.max(calls.mostReadsAtOnce, ++calls.readsAtOnce)
        return store.read(key).finally(() => calls.readsAtOnce--)
      },
      async delete(key) {
        if (!key.startsWith('steps/')) return store.delete(key)
        calls.mostDeletesAtOnce = Math.max(calls.mostDeletesAtOnce, ++calls.deletesAtOnce)
        return store.delete(key).finally(() => calls.deletesAtOnce--)
      },
    }))
    const jobId = await t.submit('relay', { steps: 24 })
    const outcomes = await t.chain(jobId)
    expect(outcomes.at(-1)).toBe('complete')
    expect(outcomes.length).toBeGreaterThanOrEqual(3)
    // The first invocation has nothing stored (the job is not marked yet); every later one lists once.
    expect(calls.lists).toBe(outcomes.length - 1)
    expect(calls.mostReadsAtOnce).toBeGreaterThan(1)
    t.clock.advance(t.deps.settings.retentionMs + 20 * 60_000)
    await reap(t.deps)
    expect((await t.deps.store.list(keys.stepsPrefix(jobId))).keys).toEqual([])
    expect(calls.mostDeletesAtOnce).toBeGreaterThan(1)
    expect(calls.mostDeletesAtOnce).toBeLessThanOrEqual(16)
  })

  it(`a job may use at most 1,000 steps: the next fails it with too_many_steps`, async () => {
    const clock = manualClock()
    const deps = testDeps(memoryPort(), { clock, kinds: [manySteps], settings: { invocationLimitMs: 3600_000 } })
    await createAccount(deps.store, clock, 'acct', 10)
    const jobId = (await submitJob(deps, 'acct', { kind: 'many_steps', input: {} }, null)).body.jobId
    expect(await runJob(deps, jobId)).toBe('failed')
    expect(await getJob(deps, 'acct', jobId)).toMatchObject({ status: 'failed', error: { code: 'too_many_steps' }, steps: { completed: 1000 } })
  }, 60_000)

  it('the index kind uses at most 500 batches, however small batchSize is', async () => {
    const names: string[] = []
    const input = indexDocuments.input.parse({ vault: 'v', documents: Array.from({ length: 10_000 }, (_, i) => ({ id: `d${i}`, text: `word${i % 7} alpha` })), batchSize: 1 })
    const context = {
      input,
      step: async (name: string, fn: () => unknown) => (names.push(name), fn()),
      progress: async () => {},
      signal: new AbortController().signal,
      saveAsset: async () => ({ assetId: 'a' }),
      yield: async () => {},
    } as unknown as JobContext<typeof input>
    const result = await indexDocuments.run(context)
    expect(result).toMatchObject({ documents: 10_000, batches: MAX_INDEX_BATCHES })
    expect(names).toHaveLength(MAX_INDEX_BATCHES)
  })

  it('a file saved inside a stored step stays the job\'s across a retry, and the reaper keeps it', async () => {
    const t = await setup()
    const jobId = await t.submit('render_steps', {})
    expect(await runJob(t.deps, jobId)).toBe('complete')
    const status = await t.status(jobId)
    const frame = (status.result as { frame: { assetId: string } }).frame
    expect(status).toMatchObject({ status: 'complete', attempt: 2 })
    expect(status.assets.map((a) => a.assetId)).toEqual([frame.assetId])
    t.clock.advance(2 * 3600_000)
    await reap(t.deps)
    expect(await t.deps.assets.metadata(assetKeys.asset(frame.assetId))).not.toBeNull()
  })

  it('a store whose answer was lost after it landed is still the run\'s own: its step_completed event and count', async () => {
    let lose = true
    const t = await setup((store) => ({
      ...store,
      async create(key, data) {
        const outcome = await store.create(key, data)
        if (lose && key.startsWith('steps/')) {
          lose = false
          throw new StorageUnavailableError('answer lost after the write landed')
        }
        return outcome
      },
    }))
    t.deps.settings.invocationLimitMs = 3600_000
    const jobId = await t.submit('relay', { steps: 4 })
    expect(await runJob(t.deps, jobId)).toBe('complete')
    expect(await t.status(jobId)).toMatchObject({ steps: { completed: 4 } })
    const completed = (await t.events(jobId)).filter((e) => e.type === 'step_completed').map((e) => e.data)
    expect(completed).toEqual([{ name: 's0' }, { name: 's1' }, { name: 's2' }, { name: 's3' }])
  })

  it('a claim whose answer was lost, then a read-back that fails once: the worker still finds the job its own and runs it', async () => {
    let jobId = ''
    let loseClaim = true
    let failRead = false
    const t = await setup((store) => ({
      ...store,
      async create(key, data) {
        const outcome = await store.create(key, data)
        if (jobId && loseClaim && key === keys.state(jobId)) {
          loseClaim = false
          failRead = true
          throw new StorageUnavailableError('answer lost after the claim landed')
        }
        return outcome
      },
      async read(key) {
        if (failRead && key === keys.state(jobId)) {
          failRead = false
          throw new StorageUnavailableError('storage blinked')
        }
        return store.read(key)
      },
    }))
    t.deps.settings.invocationLimitMs = 3600_000
    jobId = await t.submit('relay', { steps: 2 })
    expect(await runJob(t.deps, jobId)).toBe('complete')
    expect(await t.status(jobId)).toMatchObject({ status: 'complete', result: { results: [0, 10] } })
  })
})
