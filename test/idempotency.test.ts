/**
 * Idempotency-Key under slow, failed and lost calls, on the atomic in-memory
 * store. Time moves only through the test's clock; a port wrapper holds or
 * fails one chosen storage call, so a "slow" request is one whose call has
 * not returned yet. Credit invariants are checked after every test.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { accountView, createAccount } from '../lib/credits/index.ts'
import type { Deps } from '../lib/core/deps.ts'
import { ApiError } from '../lib/core/errors.ts'
import { readState } from '../lib/jobs/state.ts'
import { type JobKind, defineJob } from '../lib/kinds/define.ts'
import { reap } from '../lib/reaper/reap.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import { type BlobPort, StorageUnavailableError } from '../lib/storage/port.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { runJob } from '../lib/jobs/worker.ts'
import { expectCreditInvariants } from './support/credit-invariants.ts'
import { type ManualClock, manualClock, testDeps } from './support/deps.ts'
import { SUBMIT_WRITES_LAND_MS } from '../lib/core/limits.ts'

const paid = defineJob({ kind: 'paid', cost: 1, input: z.object({ n: z.number() }), run: async ({ input }) => ({ n: input.n }) })

type Op = 'read' | 'create' | 'replace' | 'put' | 'delete' | 'list'

/** How a held call ends: it goes through, fails before reaching storage, or lands and its answer is lost. */
type Ending = { fail?: Error; lose?: Error } | null

/**
 * The store, plus `holdAt`: the first call matching `match` waits (it has
 * been sent, its answer has not come back) until `release` says how it ends.
 */
function holdablePort(inner: BlobPort) {
  const holds: { match: (op: Op, key: string) => boolean; arrived: () => void; gate: Promise<Ending> }[] = []
  const through = async <T>(op: Op, key: string, call: () => Promise<T>): Promise<T> => {
    const index = holds.findIndex((hold) => hold.match(op, key))
    if (index < 0) return call()
    const [hold] = holds.splice(index, 1)
    hold!.arrived()
    const ending = await hold!.gate
    if (ending?.fail) throw ending.fail
    const result = await call()
    if (ending?.lose) throw ending.lose
    return result
  }
  const port: BlobPort = {
    read: (key) => through('read', key, () => inner.read(key)),
    create: (key, data) => through('create', key, () => inner.create(key, data)),
    replace: (key, data, version) => through('replace', key, () => inner.replace(key, data, version)),
    put: (key, data) => through('put', key, () => inner.put(key, data)),
    delete: (key) => through('delete', key, () => inner.delete(key)),
    list: (prefix, options) => through('list', prefix, () => inner.list(prefix, options)),
  }
  function holdAt(match: (op: Op, key: string) => boolean) {
    let arrived!: () => void
    let release!: (ending: Ending) => void
    const reached = new Promise<void>((resolve) => (arrived = resolve))
    const gate = new Promise<Ending>((resolve) => (release = resolve))
    holds.push({ match, arrived, gate })
    return { reached, release: (ending: Ending = null) => release(ending) }
  }
  return { port, holdAt }
}

/** The first storage call of a submit after it claimed its key, whatever it is (bind, lock or job). */
function afterClaim() {
  let claimed = false
  return (op: Op, key: string) => {
    // The next write after the claim (the bind, or the lock) is where the request is slow.
    if (!claimed && key.startsWith('idem/')) {
      claimed = op === 'create' || op === 'replace'
      return false
    }
    return claimed && !key.startsWith('expiry/')
  }
}

let touched: BlobPort[] = []
afterEach(async () => {
  for (const store of touched) await expectCreditInvariants(store, 'acct')
  touched = []
})

async function setup(options: { invokeWorker?: Deps['invokeWorker']; credits?: number; account?: string; kinds?: JobKind<any, any>[] } = {}) {
  const memory = memoryPort()
  const { port, holdAt } = holdablePort(memory)
  const clock = manualClock()
  const deps = testDeps(port, { clock, kinds: [paid, ...(options.kinds ?? [])], invokeWorker: options.invokeWorker, settings: { heartbeatIntervalMs: 3600_000 } })
  await createAccount(port, clock, options.account ?? 'acct', options.credits ?? 5)
  if (!options.account) touched.push(port)
  return { deps, clock, memory, holdAt }
}

const balance = async (deps: Deps) => (await accountView(deps.store, 'acct')).balance
const liveJobs = async (deps: Deps) => (await deps.store.list('queue/')).keys.map((key) => key.slice('queue/'.length))
const request = { kind: 'paid', input: { n: 1 } }
const outage = () => new StorageUnavailableError('storage answered 503')

/** The outcome of a submit as a value, so a test can hold one and finish another. */
const settle = (promise: Promise<Awaited<ReturnType<typeof submitJob>>>) =>
  promise.then(
    (submitted) => ({ status: submitted.status, jobId: submitted.body.jobId, code: null as string | null }),
    (error: unknown) => {
      if (error instanceof ApiError) return { status: error.status, jobId: null, code: error.code }
      throw error
    },
  )

async function submitSlowly(deps: Deps, clock: ManualClock, holdAt: ReturnType<typeof holdablePort>['holdAt'], slowFor: number) {
  const hold = holdAt(afterClaim())
  const first = settle(submitJob(deps, 'acct', request, 'order-1'))
  await hold.reached
  clock.advance(slowFor)
  return { first, release: hold.release }
}

describe('one Idempotency-Key makes at most one job and one charge (finding 4)', () => {
  it('a second request while the first is still working (61 s, inside a synchronous function’s 60 s) is told to wait', async () => {
    const { deps, clock, holdAt } = await setup()
    // The first request is past its claim and charge, its job write still on the way.
    const hold = holdAt((op, key) => op === 'create' && key.startsWith('queue/'))
    const first = settle(submitJob(deps, 'acct', request, 'order-1'))
    await hold.reached
    clock.advance(61_000)
    const second = await settle(submitJob(deps, 'acct', request, 'order-1'))
    expect(second).toMatchObject({ status: 409, code: 'idempotency_in_progress' })
    hold.release()
    const made = await first
    expect(made.status).toBe(202)
    // The retry of the second request is answered with the first one's job.
    expect(await settle(submitJob(deps, 'acct', request, 'order-1'))).toEqual({ status: 200, jobId: made.jobId, code: null })
    expect(await liveJobs(deps)).toEqual([made.jobId])
    expect(await balance(deps)).toBe(4)
  })

  it('a request that takes over a key still pending after 31 s wins; the slower first request writes no job and is refunded', async () => {
    const { deps, clock, holdAt } = await setup()
    const { first, release } = await submitSlowly(deps, clock, holdAt, 31_000)
    const second = await settle(submitJob(deps, 'acct', request, 'order-1'))
    expect(second.status).toBe(202)
    release() // the first request's charge goes on; it must then lose the key
    expect(await first).toMatchObject({ status: 409, code: 'idempotency_in_progress' })
    expect(await liveJobs(deps)).toEqual([second.jobId])
    expect(await balance(deps)).toBe(4)
    expect(await settle(submitJob(deps, 'acct', request, 'order-1'))).toEqual({ status: 200, jobId: second.jobId, code: null })
  })

  it('a failed submit never removes the key of the request that took it over', async () => {
    const { deps, clock, holdAt } = await setup()
    const { first, release } = await submitSlowly(deps, clock, holdAt, 31_000)
    const second = await settle(submitJob(deps, 'acct', request, 'order-1'))
    expect(second.status).toBe(202)
    release({ fail: outage() }) // the first request fails and undoes what it did
    expect(await first.catch((error: unknown) => ({ status: 503, error }))).not.toMatchObject({ status: 202 })
    // The second request's client retries (its answer was lost): it must get its job, not a new one.
    expect(await settle(submitJob(deps, 'acct', request, 'order-1'))).toEqual({ status: 200, jobId: second.jobId, code: null })
    expect(await liveJobs(deps)).toEqual([second.jobId])
    expect(await balance(deps)).toBe(4)
  })

  it('20 overlapping requests with one key, spread over 3 minutes: one job, one charge', async () => {
    const { deps, clock } = await setup({ credits: 50 })
    const pending: ReturnType<typeof settle>[] = []
    for (let i = 0; i < 20; i++) {
      pending.push(settle(submitJob(deps, 'acct', request, 'order-1')))
      clock.advance(9_000)
      for (let turn = 0; turn < i % 4; turn++) await Promise.resolve()
    }
    const answers = await Promise.all(pending)
    const jobs = new Set(answers.flatMap((answer) => (answer.jobId ? [answer.jobId] : [])))
    expect(jobs.size).toBe(1)
    expect(answers.every((answer) => answer.status !== 409 || answer.code === 'idempotency_in_progress')).toBe(true)
    expect(await liveJobs(deps)).toEqual([...jobs])
    expect(await balance(deps)).toBe(49)
  })
})

describe('a retry after 503 worker_unavailable is a new attempt (finding 5)', () => {
  it('the same Idempotency-Key gets a new job that runs, and is charged once overall', async () => {
    let reachable = false
    const { deps } = await setup({
      invokeWorker: async () => {
        if (!reachable) throw new Error('worker answered 502')
      },
    })
    const failed = settle(submitJob(deps, 'acct', request, 'order-1'))
    expect(await failed).toMatchObject({ status: 503, code: 'worker_unavailable' })
    expect(await balance(deps)).toBe(5) // refunded
    reachable = true
    const retry = await settle(submitJob(deps, 'acct', request, 'order-1'))
    expect(retry.status).toBe(202)
    expect(await runJob(deps, retry.jobId!)).toBe('complete')
    expect(await balance(deps)).toBe(4)
    // From now on the key answers with the job that ran.
    expect(await settle(submitJob(deps, 'acct', request, 'order-1'))).toEqual({ status: 200, jobId: retry.jobId, code: null })
  })

  it('even when freeing the key failed, the retry is a new attempt', async () => {
    const { deps, holdAt } = await setup({
      invokeWorker: async () => {
        // The next write to the key (the submit freeing it) fails.
        holdAt((op, key) => op === 'replace' && key.startsWith('idem/')).release({ fail: outage() })
        throw new Error('worker answered 502')
      },
    })
    expect(await settle(submitJob(deps, 'acct', request, 'order-1'))).toMatchObject({ status: 503, code: 'worker_unavailable' })
    deps.invokeWorker = async () => {}
    const retry = await settle(submitJob(deps, 'acct', request, 'order-1'))
    expect(retry.status).toBe(202)
    expect((await readState(deps.store, retry.jobId!))?.state.status ?? 'queued').toBe('queued')
    expect(await balance(deps)).toBe(4)
  })
})

describe('a worker call whose answer was lost (finding 6)', () => {
  it('after the worker claimed the job: 202, the job runs and is charged once', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const waiting = defineJob({ kind: 'waiting', cost: 1, input: z.object({}), run: async () => (await gate, { ok: true }) })
    let worker: Promise<unknown> = Promise.resolve()
    const { deps } = await setup({ kinds: [waiting] })
    deps.invokeWorker = async (jobId) => {
      worker = runJob(deps, jobId)
      while (!(await deps.store.read(`job/${jobId}`))) await new Promise((resolve) => setImmediate(resolve))
      throw new Error('socket hang up') // the worker runs; only its answer is lost
    }
    const answer = await settle(submitJob(deps, 'acct', { kind: 'waiting', input: {} }, 'order-1'))
    expect(answer.status).toBe(202)
    release()
    expect(await worker).toBe('complete')
    expect(await balance(deps)).toBe(4)
    expect(await settle(submitJob(deps, 'acct', { kind: 'waiting', input: {} }, 'order-1'))).toEqual({ status: 200, jobId: answer.jobId, code: null })
  })

  it('before the worker claimed it: 503, the job is failed and refunded, and the late worker leaves it alone', async () => {
    let late!: string
    const { deps } = await setup({
      invokeWorker: async (jobId) => {
        late = jobId
        throw new Error('socket hang up')
      },
    })
    expect(await settle(submitJob(deps, 'acct', request, null))).toMatchObject({ status: 503, code: 'worker_unavailable' })
    expect(await runJob(deps, late)).toBe('already_claimed')
    expect((await readState(deps.store, late))?.state.status).toBe('failed')
    expect(await balance(deps)).toBe(5)
  })
})

describe('a worker call that failed, with storage failing too', () => {
  it('the failing write landed but its answer was lost: still an honest 503, refunded, and the key is free', async () => {
    const { deps, holdAt } = await setup({
      invokeWorker: async () => {
        holdAt((op, key) => op === 'create' && key.startsWith('job/')).release({ lose: outage() })
        throw new Error('worker answered 502')
      },
    })
    expect(await settle(submitJob(deps, 'acct', request, 'order-1'))).toMatchObject({ status: 503, code: 'worker_unavailable' })
    expect(await balance(deps)).toBe(5)
    expect(await liveJobs(deps)).toEqual([])
    deps.invokeWorker = async () => {}
    expect((await settle(submitJob(deps, 'acct', request, 'order-1'))).status).toBe(202)
  })

  it('nothing could be read back: 202 for the job that stands, and the key keeps it (review finding)', async () => {
    const { deps, holdAt } = await setup({
      invokeWorker: async () => {
        holdAt((op, key) => op === 'create' && key.startsWith('job/')).release({ fail: outage() })
        holdAt((op, key) => op === 'read' && key.startsWith('job/')).release({ fail: outage() })
        throw new Error('worker answered 502')
      },
    })
    // The job may still run (a worker may have it): telling the client to try again would make it pay twice.
    const first = await settle(submitJob(deps, 'acct', request, 'order-1'))
    expect(first.status).toBe(202)
    deps.invokeWorker = async () => {}
    expect(await settle(submitJob(deps, 'acct', request, 'order-1'))).toEqual({ status: 200, jobId: first.jobId, code: null })
    expect(await runJob(deps, first.jobId!)).toBe('complete')
    expect(await balance(deps)).toBe(4)
  })

  it('a job the reaper failed because no worker ever came frees its key: the retry is a new attempt', async () => {
    const { deps, clock } = await setup({ invokeWorker: async () => {} }) // accepted, but no worker ever runs
    const first = await settle(submitJob(deps, 'acct', request, 'order-1'))
    expect(first.status).toBe(202)
    clock.advance(deps.settings.queuedTimeoutMs + 1)
    await reap(deps)
    expect((await readState(deps.store, first.jobId!))?.state.error?.code).toBe('worker_never_started')
    expect(await balance(deps)).toBe(5)
    const retry = await settle(submitJob(deps, 'acct', request, 'order-1'))
    expect(retry.status).toBe(202)
    expect(retry.jobId).not.toBe(first.jobId)
    expect(await runJob(deps, retry.jobId!)).toBe('complete')
    expect(await balance(deps)).toBe(4)
  })
})

describe('a key being removed', () => {
  it('a key whose removal stopped half-way is waited for, then free', async () => {
    const { deps, clock, holdAt, memory } = await setup()
    // A submit fails after its claim and its clean-up gets as far as marking the key.
    holdAt(afterClaim()).release({ fail: outage() })
    holdAt((op, key) => op === 'delete' && key.startsWith('idem/')).release({ fail: outage() })
    await expect(submitJob(deps, 'acct', request, 'order-1')).rejects.toBeInstanceOf(StorageUnavailableError)
    const [key] = (await memory.list('idem/')).keys
    expect(JSON.parse((await memory.read(key!))!.data).state).toBe('reaping')
    expect(await settle(submitJob(deps, 'acct', request, 'order-1'))).toMatchObject({ status: 409, code: 'idempotency_in_progress' })
    clock.advance(91_000)
    expect(await settle(submitJob(deps, 'acct', request, 'order-1'))).toMatchObject({ status: 409, code: 'idempotency_in_progress' })
    clock.advance(SUBMIT_WRITES_LAND_MS - 91_000)
    expect((await settle(submitJob(deps, 'acct', request, 'order-1'))).status).toBe(202)
    expect(await balance(deps)).toBe(4)
  })
})

describe('the reaper and Idempotency-Key records', () => {
  it('a key whose job was deleted by retention makes a new job', async () => {
    const { deps, clock } = await setup()
    const first = await settle(submitJob(deps, 'acct', request, 'order-1'))
    expect(await runJob(deps, first.jobId!)).toBe('complete')
    clock.advance(24 * 3600_000 + 10 * 60_000)
    await reap(deps)
    expect((await deps.store.list('idem/')).keys).toEqual([])
    const again = await settle(submitJob(deps, 'acct', request, 'order-1'))
    expect(again.status).toBe(202)
    expect(again.jobId).not.toBe(first.jobId)
  })

  it('removes a record left by a submit that died, for an account whose name has a dot', async () => {
    const { deps, clock, memory } = await setup({ account: 'acme.eu' })
    await submitJob(deps, 'acme.eu', request, 'left-behind')
    for (const key of (await memory.list('queue/')).keys) await memory.delete(key) // the submit "died" before its job
    clock.advance(24 * 3600_000 + 10 * 60_000)
    await reap(deps)
    expect((await memory.list('idem/')).keys).toEqual([])
  })

  it('a record written before records had states still replays its job', async () => {
    const { deps, memory } = await setup()
    const first = await settle(submitJob(deps, 'acct', request, 'order-1'))
    const [key] = (await memory.list('idem/')).keys
    const { state: _state, ...legacy } = JSON.parse((await memory.read(key!))!.data)
    await memory.put(key!, JSON.stringify(legacy))
    expect(await settle(submitJob(deps, 'acct', request, 'order-1'))).toEqual({ status: 200, jobId: first.jobId, code: null })
  })
})
