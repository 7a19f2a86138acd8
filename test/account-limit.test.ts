/**
 * The per-account limit on running jobs (ACCOUNT_MAX_RUNNING) at the domain
 * level, on the real local Blobs server with a clock the test moves: over
 * the limit a submit waits in its account's line (202 `queued`, its place,
 * `waitingFor: "account"`), the line starts in submit order as running jobs
 * end however they end, a waiting job can be canceled (refunded, skipped at
 * its turn), a job keeps its slot while it waits between attempts, a job
 * that waits for its account keeps its resource, and nothing in the line is
 * lost when the function handing a slot on dies.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { RetryableError } from '../lib/core/errors.ts'
import { createAccount, grantCredits, readAccount } from '../lib/credits/index.ts'
import { cancelJob, getJob } from '../lib/jobs/read.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { runJob } from '../lib/jobs/worker.ts'
import { defineJob } from '../lib/kinds/define.ts'
import { peekLock } from '../lib/locks/lock.ts'
import { HAND_ON_AT_ONCE, readSlots } from '../lib/locks/slots.ts'
import { reap } from '../lib/reaper/reap.ts'
import { runDispatcher } from '../lib/schedule/dispatcher.ts'
import { DUE_MINUTE_MS } from '../lib/schedule/due-index.ts'
import { WAITING_GUARD_MS } from '../lib/schedule/delay.ts'
import { dueHandlers } from '../lib/schedule/handlers.ts'
import { commitState, initialState, readSpec, settleFinishedJob } from '../lib/jobs/state.ts'
import { takeAccountTurn } from '../lib/jobs/account-turn.ts'
import { keys } from '../lib/storage/keys.ts'
import { StorageUnavailableError } from '../lib/storage/port.ts'
import { type StoreOp, hookedStore } from './support/hooked-store.ts'
import { useBlobs } from './support/blobs.ts'
import { manualClock, testDeps } from './support/deps.ts'

const blobs = useBlobs()

let behaviour: 'complete' | 'fail' | 'retry_later' = 'complete'
/** Each job works on its own document unless it names one. */
const work = defineJob({
  kind: 'work',
  input: z.strictObject({ doc: z.string().optional() }),
  cost: 5,
  lockKey: (input, account) => (input.doc ? [account, 'doc', input.doc] : null),
  retry: { maxAttempts: 2 },
  async run({ input }) {
    if (behaviour === 'fail') throw new Error('boom')
    if (behaviour === 'retry_later') throw new RetryableError('rate_limited', 'Rate limited.', { retryAfterMs: 10 * 60_000 })
    return { did: input.doc ?? null }
  },
})

let storeNo = 0
async function setup(options: { limit?: number | null; failInvoke?: () => boolean; counting?: boolean; failRead?: (key: string) => boolean } = {}) {
  behaviour = 'complete'
  const clock = manualClock(Date.UTC(2026, 11, 2, 12, 0, 0))
  const invoked: string[] = []
  const port = blobs.port(`account-limit-${++storeNo}`)
  const ops: Partial<Record<StoreOp, number>> = {}
  /** Set by a failed read: every call fails after it, as if the function died there. */
  let dead = false
  const counted = hookedStore(port, (op, key) => {
    ops[op] = (ops[op] ?? 0) + 1
    if (op === 'read' && options.failRead?.(key)) dead = true
    if (dead) throw new StorageUnavailableError(`${op} of ${key}: the function died`)
  })
  const revive = () => void (dead = false)
  const deps = testDeps(options.counting || options.failRead ? counted : port, {
    clock,
    kinds: [work],
    settings: { accountMaxRunning: options.limit === undefined ? 2 : options.limit },
    invokeWorker: async (jobId) => {
      if (options.failInvoke?.()) throw new Error('worker unreachable')
      invoked.push(jobId)
    },
  })
  await createAccount(deps.store, clock, 'acct', 1000)
  if (options.counting) await grantCredits(deps.store, clock, 'acct', 4000, 'many jobs')
  const balance = async () => (await readAccount(deps.store, 'acct'))!.record.balance
  const submit = async (input: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) =>
    (await submitJob(deps, 'acct', { kind: 'work', input, ...extra }, null)).body
  const submitMany = async (n: number) => {
    const ids: string[] = []
    for (let i = 0; i < n; i++) ids.push((await submit()).jobId)
    return ids
  }
  const status = (jobId: string) => getJob(deps, 'acct', jobId)
  const running = async () => (await readSlots(deps.store, 'acct'))?.record.running ?? []
  const dispatch = () => runDispatcher(deps, dueHandlers)
  return { clock, deps, invoked, balance, submit, submitMany, status, running, dispatch, ops, revive }
}

describe('per-account limit on running jobs', () => {
  it('queues the jobs over the limit with their place, and starts them in submit order as running jobs end', async () => {
    const t = await setup()
    const [a, b, c, d] = await t.submitMany(4)
    expect(t.invoked).toEqual([a, b])
    expect(await t.status(c!)).toMatchObject({ status: 'queued', queue: { position: 1, ahead: null, waitingFor: 'account' } })
    expect((await t.status(d!)).queue).toEqual({ position: 2, ahead: null, waitingFor: 'account' })
    expect(await t.balance()).toBe(1000 - 20) // each charged at submit
    // Waiting jobs stay out of the live index the reaper walks.
    expect((await t.deps.store.list(keys.specPrefix)).keys.sort()).toEqual([keys.spec(a!), keys.spec(b!)].sort())

    expect(await runJob(t.deps, b!)).toBe('complete')
    expect(t.invoked).toEqual([a, b, c])
    expect(await t.running()).toEqual([a, c])
    expect((await t.status(d!)).queue).toEqual({ position: 1, ahead: null, waitingFor: 'account' })
    for (const [done, next] of [[a!, d!]] as const) {
      expect(await runJob(t.deps, done)).toBe('complete')
      expect(t.invoked.at(-1)).toBe(next)
    }
    expect(await runJob(t.deps, c!)).toBe('complete')
    expect(await runJob(t.deps, d!)).toBe('complete')
    expect(await t.running()).toEqual([])
    expect(await t.balance()).toBe(1000 - 20)
    // Consumed line entries and start entries are gone.
    expect((await t.deps.store.list('slotline/')).keys).toEqual([])
    expect((await t.deps.store.list(keys.waitingPrefix)).keys).toEqual([])
  })

  it('frees the slot however a running job ends: failed, canceled, reaped', async () => {
    const t = await setup({ limit: 1 })
    const [first, a, b, c] = await t.submitMany(4)
    behaviour = 'fail'
    expect(await runJob(t.deps, first!)).toBe('failed') // no retry left after 2 attempts
    expect(t.invoked.at(-1)).toBe(a)
    behaviour = 'complete'
    // a was started but its worker has not claimed it: canceled now, its slot goes to b.
    expect((await cancelJob(t.deps, 'acct', a!)).job.status).toBe('canceled')
    expect(t.invoked.at(-1)).toBe(b)
    // b's worker never comes: the reaper fails it, which starts c.
    t.clock.advance(t.deps.settings.queuedTimeoutMs + 1)
    await reap(t.deps)
    expect((await t.status(b!)).error?.code).toBe('worker_never_started')
    expect(t.invoked.at(-1)).toBe(c)
    expect(await runJob(t.deps, c!)).toBe('complete')
    expect(await t.running()).toEqual([])
    // Refunds: first (failed), a (canceled before it ran), b (reaped); c paid.
    expect(await t.balance()).toBe(1000 - 5)
  })

  it('skips a job canceled while it waits: refunded at once, never started', async () => {
    const t = await setup({ limit: 1 })
    const [first, a, b] = await t.submitMany(3)
    const canceled = await cancelJob(t.deps, 'acct', a!)
    expect(canceled).toMatchObject({ status: 200, job: { status: 'canceled' } })
    expect(await t.balance()).toBe(1000 - 10)
    expect((await t.status(b!)).queue).toEqual({ position: 2, ahead: null, waitingFor: 'account' })
    await runJob(t.deps, first!)
    expect(t.invoked).toEqual([first, b])
    expect(await t.running()).toEqual([b])
  })

  it('a cancel of a waiting job that dies before settling it is settled by the dispatcher: refunded, never started', async () => {
    let failLedger = false
    const t = await setup({ limit: 1, failRead: (key) => failLedger && key.startsWith('account/') })
    const [first, waiting] = await t.submitMany(2)
    // Its submit's guard has come and gone: the job waits in its account's line.
    t.clock.advance(WAITING_GUARD_MS + DUE_MINUTE_MS)
    await t.dispatch()
    expect((await t.deps.store.list(keys.duePrefix)).keys).toEqual([])
    failLedger = true
    // The canceled state lands; settling it (the refund reads the account) fails, as if the function died there.
    await expect(cancelJob(t.deps, 'acct', waiting!)).rejects.toThrow(StorageUnavailableError)
    failLedger = false
    t.revive()
    expect(await t.status(waiting!)).toMatchObject({ status: 'canceled' })
    expect(await t.balance()).toBe(1000 - 10)
    t.clock.advance(2 * DUE_MINUTE_MS)
    await t.dispatch()
    expect(await t.balance()).toBe(1000 - 5)
    expect((await t.deps.store.list(keys.waitingPrefix)).keys).toEqual([])
    await runJob(t.deps, first!)
    expect(t.invoked).toEqual([first])
    expect(await t.running()).toEqual([])
  })

  it('keeps the slot while a job waits between attempts, and across them', async () => {
    const t = await setup({ limit: 1 })
    const [first, next] = await t.submitMany(2)
    behaviour = 'retry_later'
    expect(await runJob(t.deps, first!)).toBe('retrying')
    expect(await t.status(first!)).toMatchObject({ status: 'retrying', attempt: 1 })
    expect(await t.running()).toEqual([first])
    expect(t.invoked).toEqual([first])
    behaviour = 'complete'
    t.clock.advance(10 * 60_000 + DUE_MINUTE_MS)
    await t.dispatch() // the next attempt, under the same slot
    expect(t.invoked).toEqual([first, first])
    expect(await runJob(t.deps, first!)).toBe('complete')
    expect(t.invoked).toEqual([first, first, next])
  })

  it('a job waiting for its account keeps its resource past the lock TTL, then starts with a fresh lock', async () => {
    const t = await setup({ limit: 1 })
    const first = (await t.submit()).jobId
    const waiting = (await t.submit({ doc: 'd1' })).jobId
    expect(await t.status(waiting)).toMatchObject({ status: 'queued', queue: { waitingFor: 'account' } })
    expect((await peekLock(t.deps.store, 'acct:doc:d1'))?.record).toMatchObject({ state: 'held', jobId: waiting, waitsForAccount: true })
    // Hours later the lock's TTL is long past: another job on the resource is still refused.
    t.clock.advance(3 * t.deps.settings.lockTtlMs)
    const refused = await t.submit({ doc: 'd1' }).catch((error: unknown) => error)
    expect(refused).toMatchObject({ status: 409, code: 'resource_locked', extra: { holder: { jobId: waiting } } })
    // Its lock is not about to expire: it is kept until the job starts, then for one TTL.
    const holder = (refused as { extra: { holder: { expiresAt: string } } }).extra.holder
    expect(Date.parse(holder.expiresAt)).toBeGreaterThanOrEqual(t.clock.now() + t.deps.settings.lockTtlMs)
    expect(await t.status(waiting)).toMatchObject({ status: 'queued' })
    // The first job's worker never came: reaping it starts the waiting job.
    await reap(t.deps)
    expect((await t.status(first)).error?.code).toBe('worker_never_started')
    expect(t.invoked).toEqual([first, waiting])
    expect(await runJob(t.deps, waiting)).toBe('complete')
    const lock = (await peekLock(t.deps.store, 'acct:doc:d1'))?.record
    expect(lock).toMatchObject({ state: 'released', jobId: waiting })
  })

  it('a job waiting for its account that was canceled frees its resource for the next job', async () => {
    const t = await setup({ limit: 1 })
    await t.submit()
    const waiting = (await t.submit({ doc: 'd1' })).jobId
    await cancelJob(t.deps, 'acct', waiting)
    expect((await peekLock(t.deps.store, 'acct:doc:d1'))?.record).toMatchObject({ state: 'released' })
    expect(await t.submit({ doc: 'd1' })).toMatchObject({ status: 'queued', queue: { waitingFor: 'account' } })
  })

  it('a job handed its resource while its account is full waits for the account, keeping the resource', async () => {
    const t = await setup({ limit: 1 })
    const holder = (await t.submit({ doc: 'd1' })).jobId
    const inLine = (await t.submit({ doc: 'd1' }, { onBusy: 'queue' })).jobId
    expect((await t.status(inLine)).queue).toEqual({ position: 1, ahead: holder, waitingFor: 'resource' })
    const other = (await t.submit()).jobId // over the limit
    expect((await t.status(other)).queue).toMatchObject({ waitingFor: 'account', position: 1 })
    // The holder ends: its slot goes to `other` (first in the account's line), its resource to `inLine`,
    // which then waits for the account, holding the resource.
    expect(await runJob(t.deps, holder)).toBe('complete')
    expect(t.invoked).toEqual([holder, other])
    expect(await t.status(inLine)).toMatchObject({ status: 'queued', queue: { position: 1, waitingFor: 'account' } })
    expect((await peekLock(t.deps.store, 'acct:doc:d1'))?.record).toMatchObject({ jobId: inLine, waitsForAccount: true })
    expect(await runJob(t.deps, other)).toBe('complete')
    expect(t.invoked).toEqual([holder, other, inLine])
    expect(await runJob(t.deps, inLine)).toBe('complete')
  })

  it('a delayed job due while its account is full waits in the line, then starts', async () => {
    const t = await setup({ limit: 1 })
    const first = (await t.submit()).jobId
    const delayed = (await t.submit({}, { delaySeconds: 60 })).jobId
    expect(await t.status(delayed)).toMatchObject({ status: 'scheduled' })
    t.clock.advance(2 * DUE_MINUTE_MS)
    await t.dispatch()
    expect(await t.status(delayed)).toMatchObject({ status: 'queued', queue: { position: 1, waitingFor: 'account' } })
    expect(t.invoked).toEqual([first])
    await runJob(t.deps, first)
    expect(t.invoked).toEqual([first, delayed])
  })

  it('a hand-off whose worker call fails is started by the dispatcher within a minute', async () => {
    let fail = false
    const t = await setup({ limit: 1, failInvoke: () => fail })
    const [first, next] = await t.submitMany(2)
    fail = true
    expect(await runJob(t.deps, first!)).toBe('complete')
    expect(t.invoked).toEqual([first])
    expect(await t.running()).toEqual([next]) // handed its slot, not started
    fail = false
    t.clock.advance(DUE_MINUTE_MS)
    await t.dispatch()
    expect(t.invoked).toEqual([first, next])
    expect(await runJob(t.deps, next!)).toBe('complete')
  })

  it('a submit that died after taking a slot has its job failed and refunded by its guard, and the slot freed', async () => {
    const t = await setup({ limit: 1 })
    // What the submit left: the waiting spec and the guard, the charge, and the slot it took.
    const job = (await t.submit()).jobId
    const next = (await t.submit()).jobId
    const spec = (await readSpec(t.deps.store, job))!
    await t.deps.store.delete(keys.spec(job))
    await t.deps.store.put(keys.waitingSpec(job), JSON.stringify({ ...spec, dispatchedAt: undefined }))
    t.invoked.length = 0
    t.clock.advance(WAITING_GUARD_MS + DUE_MINUTE_MS)
    await t.dispatch()
    // As a job whose submit died before starting it: its client never heard of it.
    expect(await t.status(job)).toMatchObject({ status: 'failed', error: { code: 'worker_never_started' } })
    expect(t.invoked).toEqual([next])
    expect(await t.running()).toEqual([next])
    expect(await t.balance()).toBe(1000 - 5)
  })

  it('gives the slot back when the job was canceled and settled before the slot was taken', async () => {
    const t = await setup({ limit: 1 })
    const [first, late] = await t.submitMany(2)
    await runJob(t.deps, first!)
    expect(await t.running()).toEqual([late])
    await runJob(t.deps, late!)
    // A job canceled (and settled, finding no slot to give back) while a start was about to take one.
    const spec = { ...(await readSpec(t.deps.store, late!))!, jobId: 'job_raced' }
    const now = t.clock.now()
    const done = await commitState(t.deps, initialState(spec, now), null, (state) => ({
      state: { ...state, status: 'canceled', finishedAt: now },
      events: [{ type: 'canceled', data: null }],
    }))
    await settleFinishedJob(t.deps, done!)
    expect(await takeAccountTurn(t.deps, spec, null)).toEqual({ admitted: true })
    expect(await t.running()).toEqual([])
  })

  it('a raised or unset limit starts waiting jobs as running jobs end, several at once', async () => {
    const t = await setup({ limit: 1 })
    const [first, ...rest] = await t.submitMany(HAND_ON_AT_ONCE + 3)
    t.deps.settings.accountMaxRunning = null
    // New jobs no longer wait.
    const fresh = (await t.submit()).jobId
    expect(t.invoked).toEqual([first, fresh])
    expect(await runJob(t.deps, first!)).toBe('complete')
    expect(t.invoked.slice(2)).toEqual(rest.slice(0, HAND_ON_AT_ONCE))
    expect(await runJob(t.deps, rest[0]!)).toBe('complete')
    expect(t.invoked.slice(2)).toEqual(rest)
  })

  it('starting the next job costs the same with 5 or 200 waiting', async () => {
    const cost = async (waiting: number) => {
      const t = await setup({ limit: 1, counting: true })
      const [first] = await t.submitMany(waiting + 1)
      await runJob(t.deps, first!)
      const before = { ...t.ops }
      await runJob(t.deps, t.invoked[1]!)
      return Object.fromEntries(Object.entries(t.ops).map(([op, n]) => [op, n - (before[op as StoreOp] ?? 0)]))
    }
    expect(await cost(200)).toEqual(await cost(5))
  }, 60_000)
})
