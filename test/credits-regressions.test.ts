/**
 * Credit bugs found by review, each on the atomic in-memory store (wrapped
 * where a storage fault is needed) with a manual clock. The credit
 * invariants are checked after every test.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { chargeJob, createAccount, grantCredits, planCharge, readAccount, readLedger } from '../lib/credits/index.ts'
import { writeAccount } from '../lib/credits/ledger.ts'
import type { Deps } from '../lib/core/deps.ts'
import { JobFailure } from '../lib/core/errors.ts'
import { jobLog, readEvents } from '../lib/events/log.ts'
import { commitState } from '../lib/jobs/state.ts'
import { getJob } from '../lib/jobs/read.ts'
import { defineJob } from '../lib/kinds/define.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import type { BlobPort } from '../lib/storage/port.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { runJob } from '../lib/jobs/worker.ts'
import { reap } from '../lib/reaper/reap.ts'
import { expectCreditInvariants } from './support/credit-invariants.ts'
import { manualClock, testDeps } from './support/deps.ts'
import { interceptedStore } from './support/hooked-store.ts'

const Outcome = z.object({ fail: z.boolean() })
const run = async ({ input }: { input: { fail: boolean } }) => {
  if (input.fail) throw new JobFailure('upstream_failed', 'The upstream service failed.')
  return { ok: true }
}
const transcribe = defineJob({ kind: 'transcribe', cost: 1, input: Outcome, run })
const analyze = defineJob({ kind: 'analyze', cost: 1, input: Outcome, run })
const render = defineJob({ kind: 'render_video', cost: 3, input: Outcome, run })

let touched: BlobPort[] = []
afterEach(async () => {
  for (const store of touched) await expectCreditInvariants(store, 'acct')
  touched = []
})

async function setup(credits: number) {
  const store = memoryPort()
  const clock = manualClock()
  const deps = testDeps(store, { clock, kinds: [transcribe, analyze, render], settings: { heartbeatIntervalMs: 3600_000 } })
  await createAccount(store, clock, 'acct', credits)
  touched.push(store)
  return { store, clock, deps }
}

const balance = async (deps: Deps) => (await readAccount(deps.store, 'acct'))!.record.balance
const submit = (deps: Deps, kind: string, fail: boolean, clientJobId?: string) => submitJob(deps, 'acct', { kind, input: { fail }, clientJobId }, null)

describe('a charge that landed but was reported "not written" (finding 2)', () => {
  // The adapter settles an ambiguous write by reading back its owner token; if
  // another submit overwrote the record first, it reports "not written" for a
  // write that landed. The old retry then found the job's own reservation and
  // recorded the job as free, so its failure refunded nothing.
  for (const clientJobId of [undefined, 'rec-1']) {
    it(`is recognised by its ledger entry, so the failed job is refunded (${clientJobId ? 'with' : 'without'} a client job id)`, async () => {
      const { store, deps } = await setup(5)
      let overwritten = false
      const racing = interceptedStore(store, async (op, key, call) => {
        const result = await call()
        if (op === 'replace' && key === 'account/acct' && !overwritten) {
          overwritten = true
          // Another submit writes the account before the read-back: our write's token is gone.
          await submit(deps, 'transcribe', false)
          return { ok: false }
        }
        return result
      })
      const { body } = await submitJob({ ...deps, store: racing }, 'acct', { kind: 'transcribe', input: { fail: true }, clientJobId }, null)
      expect(overwritten).toBe(true)
      expect((await getJob(deps, 'acct', body.jobId)).creditCharged).toBe(1)
      expect(await balance(deps)).toBe(3)
      expect(await runJob(deps, body.jobId)).toBe('failed')
      expect(await balance(deps)).toBe(4) // the other submit's charge stays; this job's came back
      const ledger = await readLedger(store, 'acct')
      expect(ledger.filter((e) => e.data.jobId === body.jobId).map((e) => e.type)).toEqual(['charge', 'refund'])
    })
  }
})

describe('every other ambiguous credit write is decided by content too', () => {
  it('a refund that landed but was reported "not written" after another write is not written again', async () => {
    const { store, deps } = await setup(5)
    const { body } = await submit(deps, 'transcribe', true)
    let overwritten = false
    const racing = interceptedStore(store, async (op, key, call) => {
      const result = await call()
      const data = op === 'replace' && key === 'account/acct' ? String((await store.read(key))?.data) : ''
      if (!overwritten && data.includes(`refund:${body.jobId}`)) {
        overwritten = true
        await submit(deps, 'transcribe', false)
        return { ok: false }
      }
      return result
    })
    expect(await runJob({ ...deps, store: racing }, body.jobId)).toBe('failed')
    expect(overwritten).toBe(true)
    expect(await balance(deps)).toBe(4)
    expect((await readLedger(store, 'acct')).filter((e) => e.type === 'refund')).toHaveLength(1)
  })

  it('a reservation write that landed but was reported "not written" finds the job listed', async () => {
    const { store, deps } = await setup(5)
    await submit(deps, 'transcribe', false, 'shared')
    let overwritten = false
    const racing = interceptedStore(store, async (op, key, call) => {
      const result = await call()
      if (op === 'replace' && key.startsWith('reservation/') && !overwritten) {
        overwritten = true
        await submit(deps, 'analyze', false, 'shared') // another follow-up joins before the read-back
        return { ok: false }
      }
      return result
    })
    const { body } = await submitJob({ ...deps, store: racing }, 'acct', { kind: 'analyze', input: { fail: false }, clientJobId: 'shared' }, null)
    expect(overwritten).toBe(true)
    expect((await getJob(deps, 'acct', body.jobId)).creditCharged).toBe(0)
    expect(await balance(deps)).toBe(4)
  })
})

describe('a client job id reservation pays for what it covers (finding 7)', () => {
  it('a dearer follow-up pays the difference, and the reservation then covers the dearer price', async () => {
    const { deps } = await setup(10)
    const first = await submit(deps, 'transcribe', false, 'clip-1')
    const dear = await submit(deps, 'render_video', false, 'clip-1')
    const again = await submit(deps, 'render_video', false, 'clip-1')
    const cheap = await submit(deps, 'analyze', false, 'clip-1')
    expect((await getJob(deps, 'acct', first.body.jobId)).creditCharged).toBe(1)
    expect((await getJob(deps, 'acct', dear.body.jobId)).creditCharged).toBe(2)
    expect((await getJob(deps, 'acct', again.body.jobId)).creditCharged).toBe(0)
    expect((await getJob(deps, 'acct', cheap.body.jobId)).creditCharged).toBe(0)
    expect(await balance(deps)).toBe(7)
  })

  it('two dearer follow-ups planned at once never pay more than the dearest costs (review finding)', async () => {
    const { store, clock } = await setup(20)
    const charge = (jobId: string, cost: number) => ({ account: 'acct', jobId, kind: `cost-${cost}`, cost, clientJobId: 'work-1' })
    await chargeJob(store, clock, await planCharge(store, clock, charge('job-one', 1)))
    // Both plan against a reservation covering 1: they mean to pay 2 and 4.
    const three = await planCharge(store, clock, charge('job-three', 3))
    const five = await planCharge(store, clock, charge('job-five', 5))
    expect([three.amount, five.amount]).toEqual([2, 4])
    expect((await chargeJob(store, clock, three)).paid).toBe(2)
    // The reservation covers 3 now: 4 is more than the 2 still owed, so this charge is refused.
    await expect(chargeJob(store, clock, five)).rejects.toMatchObject({ status: 409, code: 'client_job_busy' })
    const charges = (await readLedger(store, 'acct')).filter((entry) => entry.type === 'charge')
    expect(charges.map((entry) => entry.data.amount)).toEqual([-1, -2, -4])
    // Planned again, it pays the difference to the dearest price: 5 in all.
    expect((await chargeJob(store, clock, await planCharge(store, clock, charge('job-five-again', 5)))).paid).toBe(2)
  })

  it('refunds written but never marked done are marked by a later settle, not left pending forever (review finding)', async () => {
    const { store, clock, deps } = await setup(5)
    const payer = await submit(deps, 'transcribe', true, 'clip-stuck')
    // While the worker settles, every attempt to mark the reservation's refunds done loses a race.
    let blocking = true
    const racing = interceptedStore(store, async (op, key, call) => {
      if (blocking && op === 'replace' && key.startsWith('reservation/')) {
        const stored = await store.read(key)
        if (stored && JSON.parse(stored.data).refund?.done === false) return { ok: false }
      }
      return call()
    })
    await runJob({ ...deps, store: racing }, payer.body.jobId).catch(() => 'settle failed')
    expect(await balance(deps)).toBe(5) // refunded already
    blocking = false
    clock.advance(deps.settings.heartbeatTimeoutMs + 60_000)
    await reap(deps)
    const [key] = (await store.list('reservation/')).keys
    expect(JSON.parse((await store.read(key!))!.data).refund).toMatchObject({ done: true })
    expect(await balance(deps)).toBe(5)
  })

  it('a dearer follow-up the balance cannot cover is 402 even though a reservation exists', async () => {
    const { deps } = await setup(2)
    await submit(deps, 'transcribe', false, 'clip-2')
    await expect(submit(deps, 'render_video', false, 'clip-2')).rejects.toMatchObject({ status: 402, extra: { cost: 2, balance: 1 } })
  })

  it('the payer fails but its free follow-up completes: nothing is refunded, in either order', async () => {
    const { deps } = await setup(5)
    for (const [payerFirst, id] of [[true, 'a'], [false, 'b']] as const) {
      const payer = await submit(deps, 'transcribe', true, id)
      const rider = await submit(deps, 'analyze', false, id)
      if (payerFirst) expect(await runJob(deps, payer.body.jobId)).toBe('failed')
      expect(await runJob(deps, rider.body.jobId)).toBe('complete')
      if (!payerFirst) expect(await runJob(deps, payer.body.jobId)).toBe('failed')
    }
    expect(await balance(deps)).toBe(3)
    expect((await readLedger(deps.store, 'acct')).filter((e) => e.type === 'refund')).toEqual([])
  })

  it('every job under it fails: all it was paid comes back once, when the last one ends', async () => {
    const { deps } = await setup(5)
    const payer = await submit(deps, 'transcribe', true, 'c')
    const dearer = await submit(deps, 'render_video', true, 'c')
    const rider = await submit(deps, 'analyze', true, 'c')
    expect(await balance(deps)).toBe(2)
    expect(await runJob(deps, payer.body.jobId)).toBe('failed')
    expect(await runJob(deps, dearer.body.jobId)).toBe('failed')
    expect(await balance(deps)).toBe(2) // the rider is still live: it may yet use the payments
    expect(await runJob(deps, rider.body.jobId)).toBe('failed')
    expect(await balance(deps)).toBe(5)
    const refunds = (await readLedger(deps.store, 'acct')).filter((e) => e.type === 'refund')
    expect(refunds.map((e) => [e.data.jobId, e.data.amount])).toEqual([
      [payer.body.jobId, 1],
      [dearer.body.jobId, 2],
    ])
    // The reservation is over: the same client job id is charged as new.
    const retry = await submit(deps, 'transcribe', false, 'c')
    expect((await getJob(deps, 'acct', retry.body.jobId)).creditCharged).toBe(1)
  })
})

describe('ledger and event chunks hold only committed entries (finding 8)', () => {
  it('a multi-entry append that loses the race cannot overwrite a committed chunk with its own entries', async () => {
    const store = memoryPort()
    const deps = testDeps(store)
    let releasePut!: () => void
    const held = new Promise<void>((resolve) => (releasePut = resolve))
    // The loser is slow: its writes land after the winner's chunk is committed.
    const slowPuts = interceptedStore(store, async (op, key, call) => {
      if ((op === 'put' && key.startsWith('events/job_x/')) || (op === 'replace' && key === 'job/job_x')) await held
      return call()
    })
    const base = { jobId: 'job_x', log: { firstSeq: 1, flushedSeq: 0, lastSeq: 0, tail: [] } } as never
    const nine = (await commitState(deps, base, null, (s) => ({ state: s, events: Array.from({ length: 9 }, () => ({ type: 'tick', data: null })) })))!
    const loser = commitState({ ...deps, store: slowPuts }, nine.state, nine.version, (s) => ({
      state: s,
      events: [{ type: 'loser-1', data: null }, { type: 'loser-2', data: null }],
    }))
    const winner = (await commitState(deps, nine.state, nine.version, (s) => ({ state: s, events: [{ type: 'winner', data: null }] })))!
    const next = (await commitState(deps, winner.state, winner.version, (s) => ({ state: s, events: [{ type: 'next', data: null }] })))!
    releasePut()
    expect(await loser).toBeNull()
    const stored = (await store.read('job/job_x'))!
    expect(stored.version).toBe(next.version)
    const { events } = await readEvents(store, jobLog('job_x'), JSON.parse(stored.data).log, 0, 100)
    expect(events.map((e) => e.type)).toEqual([...Array(9).fill('tick'), 'winner', 'next'])
  })
})

describe('the ledger, likewise (finding 8)', () => {
  it('a two-entry account write that loses the race leaves the committed ledger chunk intact', async () => {
    const { store, clock } = await setup(0)
    // Nine entries committed: the tail is one short of a chunk.
    for (let n = 0; n < 9; n++) await grantCredits(store, clock, 'acct', 1, `grant ${n}`)
    let releasePut!: () => void
    const held = new Promise<void>((resolve) => (releasePut = resolve))
    const slow = interceptedStore(store, async (op, key, call) => {
      if ((op === 'put' && key.startsWith('ledger/acct/')) || (op === 'replace' && key === 'account/acct')) await held
      return call()
    })
    const base = (await readAccount(store, 'acct'))!
    expect(base.record.ledger.lastSeq).toBe(9)
    const entry = (op: string) => ({ type: 'grant' as const, amount: 1, reason: op, jobId: null, clientJobId: null, kind: null, op })
    const loser = writeAccount(slow, clock, base, base.record, [entry('loser-1'), entry('loser-2')])
    await grantCredits(store, clock, 'acct', 1, 'winner')
    await grantCredits(store, clock, 'acct', 1, 'next') // flushes entries 1-10 as chunk 0
    releasePut()
    expect(await loser).toBeNull()
    const { ledger, balance } = await expectCreditInvariants(store, 'acct')
    expect(balance).toBe(11)
    expect(ledger.map((e) => e.data.reason).slice(8)).toEqual(['grant 8', 'winner', 'next'])
  })
})

describe('concurrent submits of one piece of work', () => {
  it('ten jobs submitted at once under one client job id pay once, and the reservation covers them all', async () => {
    const { deps } = await setup(20)
    const jobs = await Promise.all(Array.from({ length: 10 }, (_, i) => submit(deps, i % 2 ? 'analyze' : 'transcribe', false, 'at-once')))
    expect(await balance(deps)).toBe(19)
    // They raced: several were charged before one created the reservation, and got it back as they joined.
    const ledger = await readLedger(deps.store, 'acct')
    expect(ledger.filter((e) => e.type === 'charge').length).toBeGreaterThan(1)
    expect(ledger.filter((e) => e.type === 'refund').every((e) => e.data.reason === 'covered by its client job id')).toBe(true)
    // Each job says what it paid in the end: one of them 1, the others 0.
    const paid = await Promise.all(jobs.map(async ({ body }) => (await getJob(deps, 'acct', body.jobId)).creditCharged))
    expect(paid.reduce((a, b) => a + b, 0)).toBe(1)
    for (const { body } of jobs) expect(await runJob(deps, body.jobId)).toBe('complete')
    expect(await balance(deps)).toBe(19)
  })
})

describe('a job settled again after its reservation was removed or replaced (found with the account limit)', () => {
  // Two jobs share a client job id: the first pays for both. It fails, leaves the reservation as
  // unearned, and its settling dies before the job leaves the live index; the second completes.
  // The reaper kept failing to settle the first again for over an hour (storage faults), so the
  // reservation, over and past its hour, was removed (or a new job under the id replaced it with a
  // newer one); the first job then found itself in no reservation and took the payment it made for
  // both as its own: refunded, the completed job left unpaid. Its settling now notes on its state
  // the reservation it was in, before it leaves it.
  for (const after of ['removed', 'replaced by a newer one'] as const) it(`does not refund a payment made into a reservation since ${after}`, async () => {
    const { store, clock, deps } = await setup(10)
    const first = (await submit(deps, 'transcribe', true, 'rec-9')).body.jobId
    const second = (await submit(deps, 'transcribe', false, 'rec-9')).body.jobId
    expect(await balance(deps)).toBe(9) // one payment for both
    // The first job's settling dies right after it left the reservation.
    let dying = true
    const dies = interceptedStore(store, async (op, key, call) => {
      if (dying && op === 'delete' && key === `queue/${first}`) throw new Error('the function died')
      return call()
    })
    await runJob({ ...deps, store: dies }, first).catch(() => {})
    dying = false
    expect(await store.read(`queue/${first}`)).not.toBeNull()
    expect(await runJob(deps, second)).toBe('complete')
    // Hours later, the reservation's expiry comes round (or a new job under the id starts a newer
    // one) before the first job is settled again.
    clock.advance(2 * 3600_000)
    if (after === 'replaced by a newer one') await submit(deps, 'transcribe', false, 'rec-9')
    const settleFails = interceptedStore(store, async (op, key, call) => {
      if (op === 'read' && key === `job/${first}`) throw new Error('storage unavailable')
      return call()
    })
    for (let run = 0; run < 3; run++) {
      await reap({ ...deps, store: settleFails })
      clock.advance(5 * 60_000)
    }
    await reap(deps) // settles the first job at last
    expect(await store.read(`queue/${first}`)).toBeNull()
    // (The newer job under the id was never run: the reaper failed and refunded it.)
    expect(await balance(deps)).toBe(9)
  })
})
