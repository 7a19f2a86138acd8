/**
 * Regressions found by a review of the per-account limit, each on the real
 * local Blobs server, each failing on the code it was found on:
 * - a job canceled while it waited, whose records retention deleted before
 *   its turn came, was handed a slot it never gave back (the account blocked
 *   for good);
 * - a cancel that settled a waiting job between a hand-off's read and its
 *   write, with the handing function dying right after, leaked the slot;
 * - a burst of submits under a limit gave up on the account's slots record
 *   after 8 quick conflicts and answered 503 while slots were free.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import type { Deps } from '../lib/core/deps.ts'
import { createAccount } from '../lib/credits/index.ts'
import { cancelJob, getJob } from '../lib/jobs/read.ts'
import { commitState, initialState, readState, settleFinishedJob } from '../lib/jobs/state.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { runJob } from '../lib/jobs/worker.ts'
import { defineJob } from '../lib/kinds/define.ts'
import { readSlots } from '../lib/locks/slots.ts'
import { reap } from '../lib/reaper/reap.ts'
import { runDispatcher } from '../lib/schedule/dispatcher.ts'
import { DUE_MINUTE_MS } from '../lib/schedule/due-index.ts'
import { dueHandlers } from '../lib/schedule/handlers.ts'
import { keys } from '../lib/storage/keys.ts'
import { StorageUnavailableError } from '../lib/storage/port.ts'
import { useBlobs } from './support/blobs.ts'
import { manualClock, testDeps } from './support/deps.ts'
import { type StoreOp, hookedStore } from './support/hooked-store.ts'

const blobs = useBlobs()

const work = defineJob({
  kind: 'work',
  input: z.strictObject({ doc: z.string().optional() }),
  cost: 5,
  lockKey: (input, account) => (input.doc ? [account, 'doc', input.doc] : null),
  async run({ input }) {
    return { did: input.doc ?? null }
  },
})
const free = defineJob({ kind: 'free', input: z.strictObject({}), async run() { return null } })

let storeNo = 0
async function setup(limit: number | null, hook?: (op: StoreOp, key: string) => Promise<void> | void) {
  const clock = manualClock(Date.UTC(2026, 11, 2, 12, 0, 0))
  const invoked: string[] = []
  const port = blobs.port(`account-limit-regressions-${++storeNo}`)
  const deps = testDeps(hookedStore(port, async (op, key) => hook?.(op, key)), {
    clock,
    kinds: [work, free],
    settings: { accountMaxRunning: limit },
    invokeWorker: async (jobId) => void invoked.push(jobId),
  })
  const plain: Deps = { ...deps, store: port }
  await createAccount(port, clock, 'acct', 100_000)
  const submit = async (input: Record<string, unknown> = {}) => (await submitJob(deps, 'acct', { kind: 'work', input }, null)).body
  const status = (jobId: string) => getJob(plain, 'acct', jobId)
  const running = async () => (await readSlots(port, 'acct'))?.record.running ?? []
  const hours = async (n: number) => {
    for (let i = 0; i < n * 12; i++) {
      clock.advance(5 * 60_000)
      await runDispatcher(plain, dueHandlers)
      await reap(plain)
    }
  }
  return { clock, deps, plain, port, invoked, submit, status, running, hours }
}

describe('per-account limit: regressions', () => {
  it('passes over a waiting job whose records retention deleted before its turn', async () => {
    const t = await setup(1)
    const first = (await t.submit()).jobId
    const canceled = (await t.submit()).jobId
    const next = (await t.submit({ doc: 'd1' })).jobId
    expect(await cancelJob(t.plain, 'acct', canceled)).toMatchObject({ status: 200 })
    // `first` runs past the canceled job's retention (its worker claimed it and beats), so the reaper retires that job.
    t.clock.advance(t.deps.settings.retentionMs + 15 * 60_000)
    const spec = JSON.parse((await t.port.read(keys.spec(first)))!.data)
    const now = t.clock.now()
    const live = await commitState(t.plain, initialState(spec, now), null, (state) => ({
      state: { ...state, status: 'running', attempt: 1, startedAt: now, heartbeatAt: now },
      events: [],
    }))
    await reap(t.plain)
    expect(await readState(t.port, canceled)).toBeNull()
    const done = await commitState(t.plain, live!.state, live!.version, (state) => ({
      state: { ...state, status: 'complete', finishedAt: t.clock.now(), result: null },
      events: [{ type: 'done', data: null }],
    }))
    await settleFinishedJob(t.plain, done!)
    expect(await t.running()).toEqual([next])
    expect(t.invoked).toEqual([first, next])
  }, 60_000)

  it('gives back a slot handed to a job canceled meanwhile, when the function handing it died', async () => {
    let armed = false
    let raced = false
    let dead = false
    let waiting = ''
    // eslint-disable-next-line prefer-const
    let t: Awaited<ReturnType<typeof setup>>
    t = await setup(1, async (op, key) => {
      if (dead) throw new StorageUnavailableError(`${op} of ${key}: the function died`)
      if (armed && !raced && op === 'replace' && key === keys.accountSlots('acct')) {
        raced = true
        // Another function cancels (and settles) the waiting job right before this hand-off writes.
        expect(await cancelJob(t.plain, 'acct', waiting)).toMatchObject({ status: 200 })
        // This function dies right after its write lands.
        queueMicrotask(() => void (dead = true))
      }
    })
    const first = (await t.submit()).jobId
    waiting = (await t.submit()).jobId
    const next = (await t.submit()).jobId
    t.clock.advance(2 * DUE_MINUTE_MS)
    await runDispatcher(t.plain, dueHandlers) // the submits' guards come and go
    armed = true
    await runJob(t.deps, first).catch(() => {})
    dead = false
    await t.hours(1)
    expect(await t.running()).not.toContain(waiting)
    expect((await t.status(waiting)).status).toBe('canceled')
    expect(t.invoked).toContain(next)
  }, 60_000)

  it('takes slots for a burst of 40 concurrent submits of one account without giving up', async () => {
    const t = await setup(1000)
    const results = await Promise.allSettled(Array.from({ length: 40 }, () => submitJob(t.deps, 'acct', { kind: 'free', input: {} }, null)))
    expect(results.filter((result) => result.status === 'rejected').map((result) => String((result as PromiseRejectedResult).reason))).toEqual([])
    expect((await t.running()).length).toBe(40)
  }, 120_000)
})
