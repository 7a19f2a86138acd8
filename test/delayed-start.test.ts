/**
 * Delayed starts (`runAt`, `delaySeconds`) at the domain level on the real
 * local Blobs server, with a clock the test moves: the job is `scheduled`,
 * holds no lock and is cancelable until its time; the dispatcher starts it
 * within a minute of it, once, taking the lock then; the reaper leaves it be.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ApiError } from '../lib/core/errors.ts'
import { createAccount, readAccount } from '../lib/credits/index.ts'
import { cancelJob, getJob, readFeed } from '../lib/jobs/read.ts'
import { commitState, initialState, readSpec } from '../lib/jobs/state.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { runJob } from '../lib/jobs/worker.ts'
import { defineJob } from '../lib/kinds/define.ts'
import { acquireLock, peekLock } from '../lib/locks/lock.ts'
import { reap } from '../lib/reaper/reap.ts'
import { runDispatcher } from '../lib/schedule/dispatcher.ts'
import { DUE_MINUTE_MS, dueKey } from '../lib/schedule/due-index.ts'
import { dueHandlers } from '../lib/schedule/handlers.ts'
import { startDelayedJob } from '../lib/schedule/start.ts'
import { WAITING_GUARD_MS } from '../lib/schedule/delay.ts'
import { keys } from '../lib/storage/keys.ts'
import { markStarted } from '../lib/jobs/records.ts'
import { useBlobs } from './support/blobs.ts'
import { hookedStore, interceptedStore } from './support/hooked-store.ts'
import { StorageUnavailableError } from '../lib/storage/port.ts'
import { manualClock, testDeps } from './support/deps.ts'

const blobs = useBlobs()

const paid = defineJob({
  kind: 'paid',
  input: z.strictObject({ resource: z.string() }),
  cost: 5,
  lockKey: (input, account) => [account, 'paid', input.resource],
  async run({ input }) {
    return { did: input.resource }
  },
})

let storeNo = 0
async function setup() {
  const clock = manualClock(Date.UTC(2026, 11, 1, 12, 0, 0))
  const invoked: string[] = []
  const deps = testDeps(blobs.port(`delayed-${++storeNo}`), {
    clock,
    kinds: [paid],
    invokeWorker: async (jobId) => void invoked.push(jobId),
  })
  await createAccount(deps.store, clock, 'acct', 100)
  const viewer = 'acct'
  const balance = async () => (await readAccount(deps.store, 'acct'))!.record.balance
  const submit = (extra: Record<string, unknown>, resource = 'r1') => submitJob(deps, 'acct', { kind: 'paid', input: { resource }, ...extra }, null)
  const status = async (jobId: string) => getJob(deps, viewer, jobId)
  return { clock, deps, invoked, viewer, balance, submit, status }
}

describe('delayed starts', () => {
  it('writes the mark that its start entry is filed through a passing storage error, and fails the submit (never a 202) when it cannot', async () => {
    for (const failures of [2, Infinity]) {
      const t = await setup()
      let left = failures
      const flaky = { ...t.deps, store: hookedStore(t.deps.store, (op, key) => {
        if (op === 'replace' && key.startsWith(keys.waitingPrefix) && left-- > 0) throw new StorageUnavailableError('replace failed')
      }) }
      const submitting = submitJob(flaky, 'acct', { kind: 'paid', input: { resource: 'r1' }, delaySeconds: 60 }, null)
      if (failures === 2) {
        const { body } = await submitting
        expect((await readSpec(t.deps.store, body.jobId))?.startFiled).toBe(true)
        continue
      }
      await expect(submitting).rejects.toThrow(StorageUnavailableError)
      const [state] = (await t.deps.store.list(keys.statePrefix)).keys
      const jobId = state!.slice(keys.statePrefix.length)
      expect(await t.status(jobId)).toMatchObject({ status: 'failed', error: { code: 'worker_unavailable' } })
      t.clock.advance(WAITING_GUARD_MS + DUE_MINUTE_MS)
      await runDispatcher(t.deps, dueHandlers)
      await reap(t.deps)
      expect(await t.balance()).toBe(100)
      expect(t.invoked).toEqual([])
    }
  })

  it('is not failed by its guard when its start entry failed and was filed again under a later time', async () => {
    const t = await setup()
    const jobId = (await t.submit({ delaySeconds: 1 })).body.jobId
    let failStateRead = true
    // The dispatcher's first handling of the start entry fails on a storage error: the entry is filed again a minute later.
    const flaky = { ...t.deps, store: hookedStore(t.deps.store, (op, key) => {
      if (failStateRead && op === 'read' && key === keys.state(jobId)) {
        failStateRead = false
        throw new StorageUnavailableError('read failed')
      }
    }) }
    t.clock.advance(60_000)
    expect((await runDispatcher(flaky, dueHandlers)).itemsFailed).toBe(1)
    // The submit's guard comes before the entry filed again: the job stays scheduled.
    t.clock.advance(40_000)
    await runDispatcher(t.deps, dueHandlers)
    expect(await t.status(jobId)).toMatchObject({ status: 'scheduled' })
    t.clock.advance(60_000)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([jobId])
    expect(await runJob(t.deps, jobId)).toBe('complete')
  })

  it('is scheduled with its runAt, charged, holding no lock, and started by the dispatcher within a minute of its time', async () => {
    const t = await setup()
    const submitted = await t.submit({ delaySeconds: 90 })
    const { jobId } = submitted.body
    const runAt = t.clock.now() + 90_000
    expect(submitted.body.status).toBe('scheduled')
    expect(await t.status(jobId)).toMatchObject({ status: 'scheduled', runAt: new Date(runAt).toISOString() })
    expect(await t.balance()).toBe(95)
    expect(await peekLock(t.deps.store, 'acct:paid:r1')).toBeNull()
    expect(t.invoked).toEqual([])

    // A submit on the same resource meanwhile is not refused: nothing holds it.
    const other = await t.submit({})
    expect(other.body.status).toBe('queued')
    await runJob(t.deps, other.body.jobId)

    t.clock.set(runAt - 1)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([other.body.jobId])

    t.clock.set(runAt + DUE_MINUTE_MS - 1) // the next minute's run
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([other.body.jobId, jobId])
    expect((await peekLock(t.deps.store, 'acct:paid:r1'))?.record).toMatchObject({ state: 'held', jobId })
    expect(await t.status(jobId)).toMatchObject({ status: 'queued', runAt: new Date(runAt).toISOString() })

    expect(await runJob(t.deps, jobId)).toBe('complete')
    expect(await t.status(jobId)).toMatchObject({ status: 'complete', result: { did: 'r1' }, runAt: new Date(runAt).toISOString() })
    expect(await t.balance()).toBe(90)
  })

  it('takes delaySeconds from a clock that gives fractions of a ms (a simulation finding: it answered 500)', async () => {
    const t = await setup()
    t.clock.advance(0.6614)
    const submitted = await t.submit({ delaySeconds: 90 })
    expect(submitted.body.status).toBe('scheduled')
    const runAt = (await readSpec(t.deps.store, submitted.body.jobId))!.runAt!
    expect(runAt).toBe(Math.ceil(t.clock.now() + 90_000))
    t.clock.set(runAt)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([submitted.body.jobId])
  })

  it('starts the job once when its entry is handled twice (a crash before the entry was removed)', async () => {
    const t = await setup()
    const { jobId } = (await t.submit({ delaySeconds: 30 })).body
    t.clock.advance(30_000)
    const entry = { key: dueKey(t.clock.now(), 'start', jobId), at: t.clock.now(), type: 'start' as const, id: jobId }
    const outcomes = await Promise.all([startDelayedJob(t.deps, entry), startDelayedJob(t.deps, entry)])
    // The one that lost the mark looks again once the winner's function is surely over.
    expect(outcomes).toContainEqual({ done: true })
    expect(outcomes).toContainEqual({ done: false, at: t.clock.now() + 60_000 })
    expect(t.invoked).toEqual([jobId])
    // The handling that lost the race left the lock to the job it started.
    expect((await peekLock(t.deps.store, 'acct:paid:r1'))?.record).toMatchObject({ state: 'held', jobId })
    expect(await runJob(t.deps, jobId)).toBe('complete') // the worker claims it
    t.clock.advance(60_000)
    expect(await startDelayedJob(t.deps, entry)).toEqual({ done: true })
    expect(t.invoked).toEqual([jobId])
  })

  it('a handling that stopped after taking the lock leaves it to the next, which starts the job without rewriting it', async () => {
    const t = await setup()
    const { jobId } = (await t.submit({ delaySeconds: 30 })).body
    t.clock.advance(30_000)
    // The first handling took the lock, then its function died before the start.
    await acquireLock(t.deps.store, t.deps.clock, 'acct:paid:r1', jobId, t.deps.settings.lockTtlMs)
    const before = await peekLock(t.deps.store, 'acct:paid:r1')
    t.clock.advance(DUE_MINUTE_MS)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([jobId])
    expect((await peekLock(t.deps.store, 'acct:paid:r1'))!.version).toBe(before!.version)
    expect(await runJob(t.deps, jobId)).toBe('complete')
  })

  it('calls the worker again when the handling that marked the job started died before calling it', async () => {
    const t = await setup()
    const { jobId } = (await t.submit({ delaySeconds: 30 })).body
    t.clock.advance(30_000)
    // What a handling leaves when its function dies right after the mark: the lock taken, the spec marked, no worker called.
    await acquireLock(t.deps.store, t.deps.clock, 'acct:paid:r1', jobId, t.deps.settings.lockTtlMs)
    expect(await markStarted(t.deps, (await readSpec(t.deps.store, jobId))!, t.clock.now())).not.toBeNull()
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([]) // that handling may still be calling it
    t.clock.advance(DUE_MINUTE_MS)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([jobId])
    expect(await runJob(t.deps, jobId)).toBe('complete')
    t.clock.advance(WAITING_GUARD_MS) // its guard finds it started and goes
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([jobId])
    expect((await t.deps.store.list(keys.duePrefix)).keys).toEqual([])
  })

  it('tells a feed reader to come back at its time (a minute at most), not every second', async () => {
    const t = await setup()
    const { jobId } = (await t.submit({ delaySeconds: 3600 })).body
    const query = { after: 0, limit: 100, waitSeconds: 0 }
    expect(await readFeed(t.deps, t.viewer, jobId, query)).toMatchObject({ status: 'scheduled', events: [], done: false, retryAfter: 60 })
    const waited = await readFeed(t.deps, t.viewer, jobId, { ...query, waitSeconds: 20 })
    expect(waited).toMatchObject({ status: 'scheduled', retryAfter: 60 })
    t.clock.set((await readSpec(t.deps.store, jobId))!.runAt! - 5_500)
    expect((await readFeed(t.deps, t.viewer, jobId, query)).retryAfter).toBe(6)
  })

  it('can be canceled while scheduled: refunded, and never started', async () => {
    const t = await setup()
    const { jobId } = (await t.submit({ delaySeconds: 120 })).body
    expect(await t.balance()).toBe(95)
    const canceled = await cancelJob(t.deps, t.viewer, jobId)
    expect(canceled.job.status).toBe('canceled')
    expect(await t.balance()).toBe(100)
    t.clock.advance(10 * DUE_MINUTE_MS)
    const report = await runDispatcher(t.deps, dueHandlers)
    expect(report.handled).toBe(2) // its start, and the guard every waiting job gets
    expect(t.invoked).toEqual([])
    expect(await peekLock(t.deps.store, 'acct:paid:r1')).toBeNull()
    expect((await t.deps.store.list(keys.duePrefix)).keys).toEqual([])
  })

  it('fails with resource_locked, refunded, when its resource is busy at its time', async () => {
    const t = await setup()
    const { jobId } = (await t.submit({ delaySeconds: 60 })).body
    const holder = (await t.submit({})).body.jobId // running, never finishing
    t.clock.advance(60_000)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([holder])
    const job = await t.status(jobId)
    expect(job).toMatchObject({ status: 'failed', error: { code: 'resource_locked' } })
    expect(job.error!.message).not.toContain(holder)
    expect(await t.balance()).toBe(95) // 100 - 5 (holder); the delayed job's 5 came back
    expect((await peekLock(t.deps.store, 'acct:paid:r1'))?.record).toMatchObject({ state: 'held', jobId: holder })
  })

  it('waits outside the live index: the reaper never reads it, however late; the dispatcher starts it', async () => {
    const t = await setup()
    const { jobId } = (await t.submit({ delaySeconds: 3600 })).body
    expect((await t.deps.store.list(keys.specPrefix)).keys).toEqual([])
    expect((await t.deps.store.list(keys.waitingPrefix)).keys).toEqual([keys.waitingSpec(jobId)])
    t.clock.advance(3600_000 + t.deps.settings.queuedTimeoutMs + 60_000) // the dispatcher never ran
    expect(await reap(t.deps)).toMatchObject({ liveChecked: 0, failed: 0 })
    expect((await t.status(jobId)).status).toBe('scheduled')
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([jobId])
    expect((await t.deps.store.list(keys.waitingPrefix)).keys).toEqual([])
    expect((await t.deps.store.list(keys.specPrefix)).keys).toEqual([keys.spec(jobId)])
    expect(await runJob(t.deps, jobId)).toBe('complete')
  })

  it('is failed and refunded by its guard entry when its submit died before filing its start', async () => {
    const t = await setup()
    const { jobId } = (await t.submit({ delaySeconds: 30 })).body
    const { startFiled, ...spec } = (await readSpec(t.deps.store, jobId))!
    expect(startFiled).toBe(true)
    // What a submit that died before filing it leaves: no start entry, no mark on the spec.
    await t.deps.store.delete(dueKey(spec.runAt!, 'start', jobId))
    await t.deps.store.put(keys.waitingSpec(jobId), JSON.stringify(spec))
    t.clock.advance(WAITING_GUARD_MS + DUE_MINUTE_MS)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([])
    expect(await t.status(jobId)).toMatchObject({ status: 'failed', error: { code: 'worker_never_started' } })
    expect((await t.deps.store.list(keys.duePrefix)).keys).toEqual([])
    t.clock.advance(5 * DUE_MINUTE_MS)
    await reap(t.deps) // settles it again once its charge can no longer land
    expect(await t.balance()).toBe(100)
    expect((await t.deps.store.list(keys.waitingPrefix)).keys).toEqual([])
  })

  it('its guard settles a job whose failed state another handling wrote and died before settling', async () => {
    const t = await setup()
    const { jobId } = (await t.submit({ delaySeconds: 30 })).body
    const { startFiled: _, ...spec } = (await readSpec(t.deps.store, jobId))!
    await t.deps.store.delete(dueKey(spec.runAt!, 'start', jobId))
    await t.deps.store.put(keys.waitingSpec(jobId), JSON.stringify(spec))
    // Just before the guard's own write, the write of an earlier handling (stopped at its time limit) lands.
    let orphanLanded = false
    const racing = { ...t.deps, store: interceptedStore(t.deps.store, async (op, key, call) => {
      if (op === 'create' && key === keys.state(jobId) && !orphanLanded) {
        orphanLanded = true
        const now = t.clock.now()
        await commitState(t.deps, initialState(spec, now), null, (state) => ({ state: { ...state, status: 'failed', finishedAt: now }, events: [{ type: 'error', data: null }] }))
      }
      return call()
    }) }
    t.clock.advance(WAITING_GUARD_MS + DUE_MINUTE_MS)
    await runDispatcher(racing, dueHandlers)
    expect(orphanLanded).toBe(true)
    expect(await t.status(jobId)).toMatchObject({ status: 'failed' })
    t.clock.advance(5 * DUE_MINUTE_MS)
    await reap(t.deps) // settles it again once its charge can no longer land
    expect(await t.balance()).toBe(100)
    expect((await t.deps.store.list(keys.waitingPrefix)).keys).toEqual([])
  })

  it('its guard entry leaves a job whose start is filed to that entry', async () => {
    const t = await setup()
    const { jobId } = (await t.submit({ delaySeconds: 900 })).body
    t.clock.advance(WAITING_GUARD_MS + DUE_MINUTE_MS)
    const report = await runDispatcher(t.deps, dueHandlers)
    expect(report).toMatchObject({ handled: 1, deferred: 0 })
    expect((await t.status(jobId)).status).toBe('scheduled')
    t.clock.advance(900_000 - WAITING_GUARD_MS)
    await runDispatcher(t.deps, dueHandlers)
    expect(t.invoked).toEqual([jobId])
  })

  it('refuses a start in the past, more than 7 days ahead, or both fields, and writes nothing', async () => {
    const t = await setup()
    const before = (await t.deps.store.list('')).keys.sort()
    const now = t.clock.now()
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ runAt: new Date(now - 1000).toISOString() }, /past/],
      [{ runAt: new Date(now + 7 * 86_400_000 + 1000).toISOString() }, /7 days/],
      [{ runAt: new Date(now + 60_000).toISOString(), delaySeconds: 60 }, /not both/],
      [{ delaySeconds: 0 }, /not a valid job submission/],
      [{ delaySeconds: 7 * 86_400 + 1 }, /not a valid job submission/],
      [{ runAt: 'tomorrow' }, /not a valid job submission/],
    ]
    for (const [extra, message] of cases) {
      const error = await t.submit(extra).catch((e: unknown) => e)
      expect(error, JSON.stringify(extra)).toBeInstanceOf(ApiError)
      expect((error as ApiError).status).toBe(400)
      expect((error as ApiError).message).toMatch(message)
    }
    expect((await t.deps.store.list('')).keys.sort()).toEqual(before)
    // The boundary itself is accepted.
    const edge = await t.submit({ runAt: new Date(now + 7 * 86_400_000).toISOString() })
    expect(edge.body.status).toBe('scheduled')
    expect((await readSpec(t.deps.store, edge.body.jobId))!.runAt).toBe(now + 7 * 86_400_000)
  })
})
