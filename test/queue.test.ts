/**
 * Queue instead of refuse (`onBusy: "queue"`) at the domain level, on the
 * real local Blobs server with a clock the test moves: a submit on a busy
 * resource waits in the resource's line (202 `queued`, its position and the
 * job ahead), jobs start in submit order however the holder ends, a queued
 * job can be canceled (refunded, skipped at its turn), and nothing in the
 * line is lost when a start's worker call or the function handing on dies.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ApiError } from '../lib/core/errors.ts'
import { createAccount, readAccount } from '../lib/credits/index.ts'
import { cancelJob, getJob } from '../lib/jobs/read.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { runJob } from '../lib/jobs/worker.ts'
import { defineJob } from '../lib/kinds/define.ts'
import { acquireLock, peekLock, releaseLock } from '../lib/locks/lock.ts'
import { reap } from '../lib/reaper/reap.ts'
import { runDispatcher } from '../lib/schedule/dispatcher.ts'
import { DUE_MINUTE_MS, addDue } from '../lib/schedule/due-index.ts'
import { dueHandlers } from '../lib/schedule/handlers.ts'
import { keys } from '../lib/storage/keys.ts'
import { markStarted } from '../lib/jobs/records.ts'
import { readSpec } from '../lib/jobs/state.ts'
import { interceptedStore } from './support/hooked-store.ts'
import { useBlobs } from './support/blobs.ts'
import { manualClock, testDeps } from './support/deps.ts'
import { SUBMIT_WRITES_LAND_MS } from '../lib/core/limits.ts'

const blobs = useBlobs()

let outcome: 'complete' | 'fail' = 'complete'
const doc = defineJob({
  kind: 'doc',
  input: z.strictObject({ doc: z.string() }),
  cost: 5,
  lockKey: (input, account) => [account, 'doc', input.doc],
  async run({ input }) {
    if (outcome === 'fail') throw new Error('boom')
    return { did: input.doc }
  },
})
const waits = defineJob({ ...doc, kind: 'waits', onBusy: 'queue' })

const RESOURCE = 'acct:doc:d1'
let storeNo = 0
async function setup(options: { failInvoke?: () => boolean } = {}) {
  outcome = 'complete'
  const clock = manualClock(Date.UTC(2026, 11, 1, 12, 0, 0))
  const invoked: string[] = []
  const deps = testDeps(blobs.port(`queue-${++storeNo}`), {
    clock,
    kinds: [doc, waits],
    invokeWorker: async (jobId) => {
      if (options.failInvoke?.()) throw new Error('worker unreachable')
      invoked.push(jobId)
    },
  })
  await createAccount(deps.store, clock, 'acct', 100)
  const balance = async () => (await readAccount(deps.store, 'acct'))!.record.balance
  const submit = (extra: Record<string, unknown> = {}, kind = 'doc') => submitJob(deps, 'acct', { kind, input: { doc: 'd1' }, ...extra }, null)
  const queue = async (n: number) => {
    const ids: string[] = []
    for (let i = 0; i < n; i++) ids.push((await submit({ onBusy: 'queue' })).body.jobId)
    return ids
  }
  const status = (jobId: string) => getJob(deps, 'acct', jobId)
  const holder = async () => (await peekLock(deps.store, RESOURCE))?.record
  return { clock, deps, invoked, balance, submit, queue, status, holder }
}

describe('queue instead of refuse', () => {
  it('queues behind the holder with position and the job ahead, and starts each in submit order as the one before completes', async () => {
    const t = await setup()
    const first = (await t.submit()).body.jobId
    const submitted = await t.submit({ onBusy: 'queue' })
    expect(submitted.status).toBe(202)
    expect(submitted.body).toMatchObject({ status: 'queued', queue: { position: 1, ahead: first } })
    const [second] = [submitted.body.jobId]
    const [third, fourth] = await t.queue(2)
    expect((await t.status(fourth!)).queue).toEqual({ position: 3, ahead: third, waitingFor: 'resource' })
    expect(await t.balance()).toBe(80) // each charged at submit
    expect(t.invoked).toEqual([first])
    // Queued jobs wait outside the live index, holding nothing.
    expect((await t.deps.store.list(keys.specPrefix)).keys).toEqual([keys.spec(first)])

    expect(await runJob(t.deps, first)).toBe('complete')
    expect(t.invoked).toEqual([first, second])
    expect(await t.holder()).toMatchObject({ state: 'held', jobId: second })
    expect(await t.status(second)).toMatchObject({ status: 'queued' })
    expect((await t.status(second)).queue).toBeUndefined()
    expect((await t.status(fourth!)).queue).toEqual({ position: 2, ahead: third, waitingFor: 'resource' })

    for (const [done, next] of [[second, third!], [third!, fourth!]] as const) {
      expect(await runJob(t.deps, done)).toBe('complete')
      expect(t.invoked.at(-1)).toBe(next)
    }
    expect(await runJob(t.deps, fourth!)).toBe('complete')
    expect(await t.holder()).toMatchObject({ state: 'released' })
    expect(await t.balance()).toBe(80)
    // Consumed entries and start entries are gone.
    expect((await t.deps.store.list('line/')).keys).toEqual([])
    expect((await t.deps.store.list(keys.waitingPrefix)).keys).toEqual([])
  })

  it('hands on however the holder ends: failed, canceled, reaped', async () => {
    const t = await setup()
    const first = (await t.submit()).body.jobId
    const [a, b, c] = await t.queue(3)
    outcome = 'fail'
    expect(await runJob(t.deps, first)).toBe('failed')
    expect(t.invoked.at(-1)).toBe(a)
    outcome = 'complete'
    // a was started but its worker has not claimed it: canceled now, it hands on to b.
    expect((await cancelJob(t.deps, 'acct', a!)).job.status).toBe('canceled')
    expect(t.invoked.at(-1)).toBe(b)
    // b's worker never comes: the reaper fails it, which hands on to c.
    t.clock.advance(t.deps.settings.queuedTimeoutMs + 1)
    await reap(t.deps)
    expect((await t.status(b!)).error?.code).toBe('worker_never_started')
    expect(t.invoked.at(-1)).toBe(c)
    expect(await runJob(t.deps, c!)).toBe('complete')
    expect(await t.holder()).toMatchObject({ state: 'released' })
    // Refunds: first (failed), a (canceled before it ran), b (reaped); c paid.
    expect(await t.balance()).toBe(100 - 5)
  })

  it('skips a queued job canceled before its turn: refunded, never started', async () => {
    const t = await setup()
    const first = (await t.submit()).body.jobId
    const [a, b] = await t.queue(2)
    const canceled = await cancelJob(t.deps, 'acct', a!)
    expect(canceled).toMatchObject({ status: 200, job: { status: 'canceled' } })
    expect(await t.balance()).toBe(90)
    expect((await t.status(b!)).queue).toEqual({ position: 2, ahead: a, waitingFor: 'resource' })
    await runJob(t.deps, first)
    expect(t.invoked).toEqual([first, b])
    expect(await t.holder()).toMatchObject({ state: 'held', jobId: b })
  })

  it('a kind may queue by default; a submit may refuse anyway; refuse-mode submits get 409 while jobs wait', async () => {
    const t = await setup()
    const first = (await t.submit({}, 'waits')).body.jobId
    const queued = await t.submit({}, 'waits')
    expect(queued.body).toMatchObject({ status: 'queued', queue: { position: 1, ahead: first } })
    const refused = await t.submit({ onBusy: 'refuse' }, 'waits').catch((e: unknown) => e)
    expect(refused).toMatchObject({ status: 409, code: 'resource_locked' })
    // Even with the holder's lock expired, a newcomer does not jump the line: it hands the
    // resource on to the line's head, and is refused.
    t.clock.advance(t.deps.settings.lockTtlMs + 1)
    const late = await t.submit().catch((e: unknown) => e)
    expect(late).toMatchObject({ status: 409, code: 'resource_locked' })
    expect(await t.holder()).toMatchObject({ jobId: queued.body.jobId })
    expect(t.invoked).toContain(queued.body.jobId)
  })

  it('takes the resource at once when it is free, as a plain submit would', async () => {
    const t = await setup()
    const only = await t.submit({ onBusy: 'queue' })
    expect(only.body.status).toBe('queued')
    expect(only.body.queue).toBeUndefined()
    expect(t.invoked).toEqual([only.body.jobId])
    expect(await t.holder()).toMatchObject({ jobId: only.body.jobId })
  })

  it('a lost worker call at the hand-off is made again by the dispatcher', async () => {
    let fail = false
    const t = await setup({ failInvoke: () => fail })
    const first = (await t.submit()).body.jobId
    const [next] = await t.queue(1)
    fail = true
    await runJob(t.deps, first)
    fail = false
    expect(t.invoked).toEqual([first])
    expect(await t.holder()).toMatchObject({ jobId: next })
    t.clock.advance(DUE_MINUTE_MS)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([first, next])
    expect(await runJob(t.deps, next!)).toBe('complete')
  })

  it('a hand-off whose function died before starting the job: the dispatcher starts it within a minute', async () => {
    const t = await setup()
    const first = (await t.submit()).body.jobId
    const [next] = await t.queue(1)
    // What the release does before dying: the start entry filed, the lock handed on, nothing else.
    const released = await releaseLock(t.deps.store, t.clock, RESOURCE, first, {
      beforeHandOff: async (jobId) => void (await addDue(t.deps.store, t.clock.now(), 'start', jobId)),
    })
    expect(released).toEqual({ released: true, handedTo: next })
    expect(t.invoked).toEqual([first])
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([first, next])
  })

  it('a holder whose submit died before writing its job: the waiting job takes the resource when its guard comes', async () => {
    const t = await setup()
    await acquireLock(t.deps.store, t.clock, RESOURCE, 'job_ghost', t.deps.settings.lockTtlMs)
    const [next] = await t.queue(1)
    expect(t.invoked).toEqual([])
    // Not before a write the ghost's submit sent could still land.
    t.clock.advance(2 * DUE_MINUTE_MS)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([])
    t.clock.advance(SUBMIT_WRITES_LAND_MS)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([next])
    expect(await t.holder()).toMatchObject({ jobId: next })
  })

  it('an entry not written in time is passed with a tombstone; its writer gets a new place', async () => {
    const t = await setup()
    const first = (await t.submit()).body.jobId
    const [a] = await t.queue(1)
    // Another enqueuer took seq 2 and is slow to write its entry.
    const lock = (await peekLock(t.deps.store, RESOURCE))!
    const line = (lock.record as { line: { head: number; tail: number } }).line
    await t.deps.store.replace(keys.lock(RESOURCE), JSON.stringify({ ...lock.record, line: { ...line, tail: line.tail + 1 } }), lock.version)
    await runJob(t.deps, first) // hands to a
    await runJob(t.deps, a!) // finds seq 2 empty: tombstone, released
    expect(await t.holder()).toMatchObject({ state: 'released' })
    const late = await t.deps.store.create(keys.lineEntry(RESOURCE, line.tail), JSON.stringify({ jobId: 'job_late', at: 0 }))
    expect(late.ok).toBe(false)
  })

  it('a delayed job that chose to queue waits in line at its time instead of failing', async () => {
    const t = await setup()
    const delayed = (await t.submit({ delaySeconds: 60, onBusy: 'queue' })).body.jobId
    const first = (await t.submit()).body.jobId
    t.clock.advance(60_000)
    await runDispatcher(t.deps, dueHandlers)
    expect(await t.status(delayed)).toMatchObject({ status: 'queued', queue: { position: 1, ahead: first } })
    await runJob(t.deps, first)
    expect(t.invoked).toEqual([first, delayed])
  })

  it('a status read while the job starts never answers 404 (a simulation finding: both spec reads missed the move)', async () => {
    const t = await setup()
    await t.submit()
    const [next] = await t.queue(1)
    const spec = (await readSpec(t.deps.store, next!))!
    // The start lands between the status's read of `queue/` (before it) and of `waiting/` (after it).
    let queueRead = false
    let moved!: () => void
    const started = new Promise<void>((resolve) => (moved = resolve))
    const store = interceptedStore(t.deps.store, async (op, key, call) => {
      if (op === 'read' && key === keys.spec(next!) && !queueRead) {
        queueRead = true
        const result = await call()
        await markStarted(t.deps, spec, t.clock.now())
        moved()
        return result
      }
      // A read of the waiting copy sent after that of `queue/` lands after the move.
      if (op === 'read' && key === keys.waitingSpec(next!) && queueRead) await started
      return call()
    })
    const job = await getJob({ ...t.deps, store }, 'acct', next!)
    expect(job).toMatchObject({ jobId: next, status: 'queued' })
  })

  it('refuses a bad onBusy with 400 and writes nothing', async () => {
    const t = await setup()
    const before = (await t.deps.store.list('')).keys.sort()
    const error = await t.submit({ onBusy: 'wait' }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ApiError)
    expect((error as ApiError).status).toBe(400)
    expect((await t.deps.store.list('')).keys.sort()).toEqual(before)
  })
})
