/**
 * Retries at the domain level on the real local Blobs server, with a clock
 * the test moves: a kind's policy, RetryableError and unexpected errors
 * retried, JobFailure final, short waits slept by the worker, long ones run
 * by the dispatcher; one charge, a refund only when the last attempt fails,
 * the lock held across attempts, cancel and the reaper during a wait.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { DEFAULT_SETTINGS, type Settings } from '../lib/core/deps.ts'
import { JobFailure, RetryableError } from '../lib/core/errors.ts'
import { createAccount, readAccount, readLedger } from '../lib/credits/index.ts'
import { cancelJob, getJob, readFeed } from '../lib/jobs/read.ts'
import { readState } from '../lib/jobs/state.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { runJob } from '../lib/jobs/worker.ts'
import { defineJob } from '../lib/kinds/define.ts'
import { peekLock } from '../lib/locks/lock.ts'
import { reap } from '../lib/reaper/reap.ts'
import { runDispatcher } from '../lib/schedule/dispatcher.ts'
import { dueKey } from '../lib/schedule/due-index.ts'
import { dueHandlers } from '../lib/schedule/handlers.ts'
import { startNextAttempt } from '../lib/schedule/retry.ts'
import { keys } from '../lib/storage/keys.ts'
import { useBlobs } from './support/blobs.ts'
import { manualClock, testDeps } from './support/deps.ts'

const blobs = useBlobs()

/** What each attempt does, by attempt number (the last entry repeats). */
type Plan = ('ok' | 'crash' | 'retryable' | 'retry_10s' | 'retry_past_10s' | 'retry_later' | 'retry_much_later' | 'final')[]
const plans = new Map<string, Plan>()

const flaky = defineJob({
  kind: 'flaky',
  cost: 5,
  input: z.strictObject({ resource: z.string(), plan: z.string() }),
  lockKey: (input, account) => [account, 'flaky', input.resource],
  retry: { maxAttempts: 3, backoff: { baseMs: 1000, capMs: 4000 } },
  async run({ input, emit }) {
    const plan = plans.get(input.plan) ?? ['ok']
    const attempt = (counts.get(input.plan) ?? 0) + 1
    counts.set(input.plan, attempt)
    const step = plan[Math.min(attempt, plan.length) - 1]
    await emit('work', { attempt })
    if (step === 'crash') throw new Error('connect ECONNREFUSED 10.0.3.7:5432')
    if (step === 'retryable') throw new RetryableError('upstream_busy', 'The upstream service is busy.')
    if (step === 'retry_10s') throw new RetryableError('rate_limited', 'Rate limited.', { retryAfterMs: 10_000 })
    if (step === 'retry_past_10s') throw new RetryableError('rate_limited', 'Rate limited.', { retryAfterMs: 10_001 })
    if (step === 'retry_later') throw new RetryableError('rate_limited', 'Rate limited.', { retryAfterMs: 120_000 })
    if (step === 'retry_much_later') throw new RetryableError('rate_limited', 'Rate limited.', { retryAfterMs: 10 * 86_400_000 })
    if (step === 'final') throw new JobFailure('bad_document', 'The document cannot be read.')
    return { attempt }
  },
})
const counts = new Map<string, number>()

/** No policy: today's behaviour, one attempt. */
const once = defineJob({
  kind: 'once',
  cost: 5,
  input: z.strictObject({}),
  async run() {
    throw new Error('boom')
  },
})

/** Emits, waits for the test, then throws a plain error: a cancel arrives meanwhile. */
let gate: { reached: () => void; release: Promise<void> } | null = null
const gated = defineJob({
  kind: 'gated',
  cost: 5,
  input: z.strictObject({}),
  retry: {},
  async run({ emit }) {
    await emit('work', null)
    gate?.reached()
    await gate?.release
    throw new Error('lost the connection')
  },
})

let storeNo = 0
async function setup(options: { random?: () => number; settings?: Partial<Settings> } = {}) {
  const clock = manualClock(Date.UTC(2026, 11, 1, 12, 0, 10))
  const invoked: string[] = []
  const deps = {
    ...testDeps(blobs.port(`retry-${++storeNo}`), { clock, kinds: [flaky, once, gated], settings: options.settings, invokeWorker: async (jobId) => void invoked.push(jobId) }),
    random: options.random ?? (() => 0.5),
  }
  await createAccount(deps.store, clock, 'acct', 100)
  const balance = async () => (await readAccount(deps.store, 'acct'))!.record.balance
  const submit = async (plan: Plan, resource = `r${storeNo}`) => {
    const name = `p${storeNo}-${Math.random()}`
    plans.set(name, plan)
    const { body } = await submitJob(deps, 'acct', { kind: 'flaky', input: { resource, plan: name } }, null)
    // The submit's own worker call: the test runs that worker itself.
    expect(invoked.splice(0)).toEqual([body.jobId])
    return { jobId: body.jobId, lockKey: `acct:flaky:${resource}`, plan: name }
  }
  const events = async (jobId: string) => (await readFeed(deps, 'acct', jobId, { after: 0, limit: 1000, waitSeconds: 0 })).events
  const ledger = async () => (await readLedger(deps.store, 'acct')).filter((entry) => entry.type === 'charge' || entry.type === 'refund')
  return { clock, deps, invoked, balance, submit, events, ledger, status: (jobId: string) => getJob(deps, 'acct', jobId) }
}

describe('retries', () => {
  it('retries an unexpected error after a short wait in the same invocation, then completes: both attempts in the log, one charge', async () => {
    const t = await setup()
    const job = await t.submit(['crash', 'ok'])
    const started = t.clock.now()
    expect(await runJob(t.deps, job.jobId)).toBe('complete')
    // The wait: full jitter of base 1000 ms for attempt 1, with random() = 0.5.
    expect(t.clock.now() - started).toBeGreaterThanOrEqual(500)
    const events = await t.events(job.jobId)
    expect(events.map((e) => e.type)).toEqual(['started', 'work', 'attempt_failed', 'retry_scheduled', 'started', 'work', 'done'])
    expect(events[0]!.data).toEqual({ attempt: 1 })
    expect(events[2]!.data).toEqual({ attempt: 1, error: { code: 'internal_error', message: expect.any(String) } })
    expect(JSON.stringify(events)).not.toContain('10.0.3.7')
    expect(events[3]!.data).toEqual({ attempt: 2, at: new Date(events[3]!.ts + 500).toISOString() })
    expect(events[4]!.data).toEqual({ attempt: 2 })
    expect(await t.status(job.jobId)).toMatchObject({ status: 'complete', attempt: 2, maxAttempts: 3, nextAttemptAt: null, error: null, result: { attempt: 2 } })
    expect(await t.balance()).toBe(95)
    expect((await t.ledger()).map((entry) => entry.type)).toEqual(['charge'])
    expect((await peekLock(t.deps.store, job.lockKey))?.record.state).toBe('released')
  })

  it('fails after its last attempt with that attempt’s error and refunds once', async () => {
    const t = await setup()
    const job = await t.submit(['retryable'])
    expect(await runJob(t.deps, job.jobId)).toBe('failed')
    const status = await t.status(job.jobId)
    expect(status).toMatchObject({ status: 'failed', attempt: 3, maxAttempts: 3, error: { code: 'upstream_busy', message: 'The upstream service is busy.' } })
    const types = (await t.events(job.jobId)).map((e) => e.type)
    expect(types.filter((type) => type === 'started')).toHaveLength(3)
    expect(types.filter((type) => type === 'attempt_failed')).toHaveLength(2)
    expect(types.at(-1)).toBe('error')
    expect(await t.balance()).toBe(100)
    expect((await t.ledger()).map((entry) => entry.type)).toEqual(['charge', 'refund'])
    expect((await peekLock(t.deps.store, job.lockKey))?.record.state).toBe('released')
  })

  it('never retries a JobFailure, nor a kind without a policy', async () => {
    const t = await setup()
    const job = await t.submit(['final', 'ok'])
    expect(await runJob(t.deps, job.jobId)).toBe('failed')
    expect(await t.status(job.jobId)).toMatchObject({ status: 'failed', attempt: 1, error: { code: 'bad_document' } })
    const { body } = await submitJob(t.deps, 'acct', { kind: 'once', input: {} }, null)
    expect(body.status).toBe('queued')
    expect(await runJob(t.deps, body.jobId)).toBe('failed')
    expect(await t.status(body.jobId)).toMatchObject({ status: 'failed', attempt: 1, maxAttempts: 1, error: { code: 'internal_error' } })
    expect(await t.balance()).toBe(100)
  })

  it('honours retryAfterMs: a long wait goes to the due-time index, the lock held past it, the status shows when and why', async () => {
    const t = await setup()
    const job = await t.submit(['retry_later', 'ok'])
    const failedAt = t.clock.now()
    expect(await runJob(t.deps, job.jobId)).toBe('retrying')
    const at = failedAt + 120_000
    expect(await t.status(job.jobId)).toMatchObject({
      status: 'retrying', attempt: 1, maxAttempts: 3, nextAttemptAt: new Date(at).toISOString(),
      error: { code: 'rate_limited', message: 'Rate limited.' },
    })
    expect((await t.deps.store.list(keys.duePrefix)).keys).toContain(dueKey(at, 'retry', job.jobId))
    const lock = (await peekLock(t.deps.store, job.lockKey))!.record
    expect(lock).toMatchObject({ state: 'held', jobId: job.jobId })
    expect(lock.state === 'held' && lock.expiresAt).toBeGreaterThanOrEqual(at + t.deps.settings.lockTtlMs)
    // A submit on the resource meanwhile is refused: the job still holds it.
    await expect(submitJob(t.deps, 'acct', { kind: 'flaky', input: { resource: `r${storeNo}`, plan: job.plan } }, null)).rejects.toMatchObject({ code: 'resource_locked' })
    // The feed tells a waiting job from a finished one.
    const feed = await readFeed(t.deps, 'acct', job.jobId, { after: 0, limit: 100, waitSeconds: 0 })
    expect(feed).toMatchObject({ status: 'retrying', done: false })
    // A poller caught up is told to come back when the attempt is due (a minute at most).
    const caughtUp = await readFeed(t.deps, 'acct', job.jobId, { after: feed.next, limit: 100, waitSeconds: 0 })
    expect(caughtUp).toMatchObject({ events: [], retryAfter: 60 })

    // Not yet due: the dispatcher leaves it; then it calls the worker, which runs attempt 2.
    t.clock.set(at - 1)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([])
    t.clock.set(at + 30_000)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([job.jobId])
    expect(await runJob(t.deps, job.jobId)).toBe('complete')
    expect(await t.status(job.jobId)).toMatchObject({ status: 'complete', attempt: 2, nextAttemptAt: null, error: null })
    expect(await t.balance()).toBe(95)
  })

  it('sleeps a wait of up to 10 s in the invocation by default, and files a longer one for the dispatcher; RETRY_SLEEP_LIMIT_SECONDS moves the line', async () => {
    expect(DEFAULT_SETTINGS.retrySleepLimitMs).toBe(10_000)
    const t = await setup()
    const slept = await t.submit(['retry_10s', 'ok'], 'slept')
    const started = t.clock.now()
    expect(await runJob(t.deps, slept.jobId)).toBe('complete')
    expect(t.clock.now() - started).toBeGreaterThanOrEqual(10_000)
    const filed = await t.submit(['retry_past_10s', 'ok'], 'filed')
    const failedAt = t.clock.now()
    expect(await runJob(t.deps, filed.jobId)).toBe('retrying')
    expect((await t.deps.store.list(keys.duePrefix)).keys).toEqual([dueKey(failedAt + 10_001, 'retry', filed.jobId)])

    // With the line at 20 s, the 10.001 s wait is slept too.
    const longer = await setup({ settings: { retrySleepLimitMs: 20_000 } })
    const job = await longer.submit(['retry_past_10s', 'ok'])
    expect(await runJob(longer.deps, job.jobId)).toBe('complete')
    expect((await longer.deps.store.list(keys.duePrefix)).keys).toEqual([])
  })

  it('caps a retryAfterMs at 24 hours', async () => {
    const t = await setup()
    const job = await t.submit(['retry_much_later'])
    const failedAt = t.clock.now()
    expect(await runJob(t.deps, job.jobId)).toBe('retrying')
    expect((await t.status(job.jobId)).nextAttemptAt).toBe(new Date(failedAt + 24 * 3600_000).toISOString())
  })

  it('files even a short wait for the dispatcher when the invocation has not the time left for another attempt', async () => {
    const t = await setup()
    const job = await t.submit(['crash', 'ok'])
    const outcome = await runJob(t.deps, job.jobId, { invokedAt: t.clock.now() - 14.5 * 60_000 })
    expect(outcome).toBe('retrying')
    const due = Date.parse((await t.status(job.jobId)).nextAttemptAt!)
    expect((await t.deps.store.list(keys.duePrefix)).keys).toEqual([dueKey(due, 'retry', job.jobId)])
  })

  it('cancel during a long wait: canceled at once, refunded, lock freed, and no later attempt runs', async () => {
    const t = await setup()
    const job = await t.submit(['retry_later', 'ok'])
    expect(await runJob(t.deps, job.jobId)).toBe('retrying')
    const canceled = await cancelJob(t.deps, 'acct', job.jobId)
    expect(canceled.status).toBe(200)
    expect(canceled.job).toMatchObject({ status: 'canceled', nextAttemptAt: null })
    expect(await t.balance()).toBe(100)
    expect((await peekLock(t.deps.store, job.lockKey))?.record.state).toBe('released')
    // The due entry finds a finished job; a late delivery finds nothing to run.
    t.clock.advance(200_000)
    const report = await runDispatcher(t.deps, dueHandlers)
    expect(report.handled).toBe(1)
    expect(t.invoked).toEqual([])
    expect(await runJob(t.deps, job.jobId)).toBe('already_claimed')
    expect(counts.get(job.plan)).toBe(1)
    expect((await t.events(job.jobId)).at(-1)?.type).toBe('canceled')
    expect((await t.ledger()).map((entry) => entry.type)).toEqual(['charge', 'refund'])
  })

  it('duplicate deliveries: an early one leaves, of two due ones exactly one runs the attempt', async () => {
    const t = await setup()
    const job = await t.submit(['retry_later', 'ok'])
    expect(await runJob(t.deps, job.jobId)).toBe('retrying')
    const due = Date.parse((await t.status(job.jobId)).nextAttemptAt!)
    t.clock.advance(1000)
    expect(await runJob(t.deps, job.jobId)).toBe('not_due')
    // The early delivery renewed the lock without shortening it: it still lasts a TTL past the next attempt.
    const lock = (await peekLock(t.deps.store, job.lockKey))!.record
    expect(lock.state === 'held' && lock.expiresAt).toBeGreaterThanOrEqual(due + t.deps.settings.lockTtlMs)
    t.clock.advance(121_000)
    const outcomes = await Promise.all([runJob(t.deps, job.jobId), runJob(t.deps, job.jobId)])
    expect(outcomes.sort()).toEqual(['already_claimed', 'complete'])
    expect(counts.get(job.plan)).toBe(2)
    const types = (await t.events(job.jobId)).map((e) => e.type)
    expect(types.filter((type) => type === 'started')).toHaveLength(2)
  })

  it('the dispatcher’s retry entry handled twice calls the worker twice, and the attempt runs once', async () => {
    const t = await setup()
    const job = await t.submit(['retry_later', 'ok'])
    expect(await runJob(t.deps, job.jobId)).toBe('retrying')
    t.clock.advance(125_000)
    const entry = { key: 'k', at: t.clock.now(), type: 'retry' as const, id: job.jobId }
    const [first, second] = await Promise.all([startNextAttempt(t.deps, entry), startNextAttempt(t.deps, entry)])
    // Each comes back once to check that a worker claimed the attempt.
    expect(first).toEqual({ done: false, at: t.clock.now() + 120_000 })
    expect(second).toEqual(first)
    expect(t.invoked).toEqual([job.jobId, job.jobId])
    expect((await Promise.all(t.invoked.map((id) => runJob(t.deps, id)))).sort()).toEqual(['already_claimed', 'complete'])
    expect(counts.get(job.plan)).toBe(2)
    // The check finds the attempt claimed (here: the job complete).
    expect(await startNextAttempt(t.deps, entry)).toEqual({ done: true })
    expect(t.invoked).toHaveLength(2)
  })

  it('a worker call the dispatcher made that never arrived is made again', async () => {
    const t = await setup()
    const job = await t.submit(['retry_later', 'ok'])
    expect(await runJob(t.deps, job.jobId)).toBe('retrying')
    t.clock.advance(130_000)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([job.jobId]) // that delivery is lost
    t.clock.advance(120_000)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([job.jobId, job.jobId])
    expect(await runJob(t.deps, job.jobId)).toBe('complete')
  })

  it('the reaper fails a waiting job whose next attempt nobody claimed, refunds it and frees its lock', async () => {
    const t = await setup()
    const job = await t.submit(['retry_later', 'ok'])
    expect(await runJob(t.deps, job.jobId)).toBe('retrying')
    const due = Date.parse((await t.status(job.jobId)).nextAttemptAt!)
    t.clock.set(due + t.deps.settings.queuedTimeoutMs - 1)
    await reap(t.deps)
    expect((await t.status(job.jobId)).status).toBe('retrying')
    t.clock.set(due + t.deps.settings.queuedTimeoutMs + 1)
    await reap(t.deps)
    expect(await t.status(job.jobId)).toMatchObject({ status: 'failed', error: { code: 'retry_never_started' } })
    expect(await t.balance()).toBe(100)
    expect((await peekLock(t.deps.store, job.lockKey))?.record.state).toBe('released')
    // A late delivery now finds a finished job.
    expect(await runJob(t.deps, job.jobId)).toBe('already_claimed')
  })

  it('an attempt that fails after a cancel was asked for ends canceled, not retrying', async () => {
    const t = await setup()
    const { body } = await submitJob(t.deps, 'acct', { kind: 'gated', input: {} }, null)
    let release!: () => void
    const reached = new Promise<void>((resolve) => {
      gate = { reached: resolve, release: new Promise<void>((done) => (release = done)) }
    })
    const running = runJob(t.deps, body.jobId)
    await reached
    expect((await cancelJob(t.deps, 'acct', body.jobId)).status).toBe(202)
    release()
    expect(await running).toBe('canceled')
    expect(await t.status(body.jobId)).toMatchObject({ status: 'canceled', attempt: 1, maxAttempts: 4 })
    expect((await t.events(body.jobId)).map((e) => e.type)).not.toContain('retry_scheduled')
    gate = null
  })

  it('a waiting job whose lock expired (nobody ran it or reaped it) is failed by the submit that takes the resource over', async () => {
    const t = await setup()
    const job = await t.submit(['retry_later', 'ok'])
    expect(await runJob(t.deps, job.jobId)).toBe('retrying')
    const due = Date.parse((await t.status(job.jobId)).nextAttemptAt!)
    t.clock.set(due + t.deps.settings.lockTtlMs + 1)
    const next = await submitJob(t.deps, 'acct', { kind: 'flaky', input: { resource: `r${storeNo}`, plan: job.plan } }, null)
    expect(next.body.status).toBe('queued')
    expect(await t.status(job.jobId)).toMatchObject({ status: 'failed', error: { code: 'lock_expired' } })
    // Refunded: only the new job's charge stands.
    expect(await t.balance()).toBe(95)
    // Its late attempt finds it finished.
    expect(await runJob(t.deps, job.jobId)).toBe('already_claimed')
  })

  it('stored input the kind cannot parse is final even with a policy', async () => {
    const t = await setup()
    const job = await t.submit(['crash'])
    const spec = await t.deps.store.read(keys.spec(job.jobId))
    await t.deps.store.put(keys.spec(job.jobId), JSON.stringify({ ...JSON.parse(spec!.data), input: { resource: 7 } }))
    expect(await runJob(t.deps, job.jobId)).toBe('failed')
    expect((await readState(t.deps.store, job.jobId))!.state).toMatchObject({ status: 'failed', attempt: 1 })
  })
})
