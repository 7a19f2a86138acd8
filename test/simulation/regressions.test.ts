/**
 * Bugs the protocol simulation (protocol.test.ts) found, each pinned down as
 * a small deterministic test on the in-memory store with a manual clock, so
 * a regression fails here with a readable story rather than as a seed.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createAccount, readAccount, readLedger } from '../../lib/credits/index.ts'
import type { Deps } from '../../lib/core/deps.ts'
import { jobLog, readEvents } from '../../lib/events/log.ts'
import { commitState, readState } from '../../lib/jobs/state.ts'
import { readFeed } from '../../lib/jobs/read.ts'
import { defineJob } from '../../lib/kinds/define.ts'
import { reap } from '../../lib/reaper/reap.ts'
import { memoryPort } from '../../lib/storage/memory.ts'
import { StorageUnavailableError } from '../../lib/storage/port.ts'
import { submitJob } from '../../lib/jobs/submit.ts'
import { runJob } from '../../lib/jobs/worker.ts'
import { expectCreditInvariants } from '../support/credit-invariants.ts'
import { manualClock, testDeps } from '../support/deps.ts'
import { hanging } from '../support/kinds.ts'
import { interceptedStore } from '../support/hooked-store.ts'

const paid = defineJob({ kind: 'paid', cost: 1, input: z.object({ n: z.number() }), run: async ({ input }) => ({ n: input.n }) })

async function setup(credits = 5) {
  const store = memoryPort()
  const clock = manualClock()
  const deps = testDeps(store, { clock, kinds: [paid], settings: { heartbeatIntervalMs: 3600_000 } })
  await createAccount(store, clock, 'acct', credits)
  return { store, clock, deps }
}

describe('regressions found by the protocol simulation', () => {
  it('a worker that Netlify starts on its +3 min retry keeps its lock for its whole 15 minutes', async () => {
    // The lock's TTL (16 min) was counted from the submit. A worker started on
    // Netlify's retries (+1, then +3 min) legitimately runs until +19 min, so from
    // +16 min another submit took its lock over and failed the live job; had
    // recording that failure hit a storage error, the new submit released the lock
    // and a third job ran next to the old one.
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const store = memoryPort()
    const clock = manualClock()
    const deps = testDeps(store, { clock, kinds: [hanging(gate)], settings: { heartbeatIntervalMs: 3600_000 } })
    const first = await submitJob(deps, 'acct', { kind: 'hanging', input: { resource: 'doc' } }, null)
    clock.advance(4 * 60_000) // the first delivery and the +1 min retry failed before claiming
    const run = runJob(deps, first.body.jobId)
    while ((await readState(store, first.body.jobId))?.state.log.lastSeq !== 2) await new Promise((resolve) => setImmediate(resolve))
    clock.advance(12 * 60_000 + 30_000) // +16.5 min: the worker is 12.5 min into its 15
    await expect(submitJob(deps, 'acct', { kind: 'hanging', input: { resource: 'doc' } }, null)).rejects.toMatchObject({ status: 409, code: 'resource_locked' })
    release()
    expect(await run).toBe('complete')
  })

  it('a job claimed and finished between the two reads of a status or feed request is not answered 404', async () => {
    // Seen as: a poller's first feed read found no state (still queued), then the
    // worker claimed, finished and cleaned up (spec deleted) before the spec read.
    const { store, deps } = await setup()
    const { body } = await submitJob(deps, 'acct', { kind: 'paid', input: { n: 1 } }, null)
    let raced = false
    const racing = interceptedStore(store, async (op, key, call) => {
      const result = await call()
      if (op === 'read' && key === `job/${body.jobId}` && result === null && !raced) {
        raced = true
        expect(await runJob(deps, body.jobId)).toBe('complete')
      }
      return result
    })
    const feed = await readFeed({ ...deps, store: racing }, 'acct', body.jobId, { after: 0, limit: 100, waitSeconds: 0 })
    expect(raced).toBe(true)
    expect(feed.status).toBe('complete')
    expect(feed.done).toBe(true)
  })

  it('a charge whose write landed but whose answer was lost is recognised by content: charged once, the job runs', async () => {
    const { store, deps } = await setup(5)
    let lost = false
    const flaky = interceptedStore(store, async (op, key, call) => {
      const result = await call()
      if (op === 'replace' && key === 'account/acct' && !lost) {
        lost = true
        throw new StorageUnavailableError('answer lost after the write landed')
      }
      return result
    })
    const { body } = await submitJob({ ...deps, store: flaky }, 'acct', { kind: 'paid', input: { n: 1 } }, null)
    expect(await runJob(deps, body.jobId)).toBe('complete')
    const { balance, ledger } = await expectCreditInvariants(store, 'acct')
    expect(balance).toBe(4)
    expect(ledger.map((e) => e.type)).toEqual(['grant', 'charge'])
  })

  it('a spec write that landed but threw: the submit fails that job at once, so a retry with its Idempotency-Key makes the only job', async () => {
    // Seen as "one Idempotency-Key created 2 jobs": the first stayed queued after its submit freed
    // the key, and only the reaper failed it, minutes later.
    const { store, deps } = await setup(5)
    let lost: string | null = null
    const flaky = interceptedStore(store, async (op, key, call) => {
      const result = await call()
      if (op === 'create' && key.startsWith('queue/') && !lost) {
        lost = key.slice('queue/'.length)
        throw new StorageUnavailableError('answer lost after the write landed')
      }
      return result
    })
    const request = { kind: 'paid', input: { n: 1 } }
    await expect(submitJob({ ...deps, store: flaky }, 'acct', request, 'key-1')).rejects.toBeInstanceOf(StorageUnavailableError)
    expect((await readState(store, lost!))?.state).toMatchObject({ status: 'failed', startedAt: null, error: { code: 'worker_unavailable' } })
    expect(await runJob(deps, lost!)).toBe('already_claimed') // a late delivery cannot run it
    const retry = await submitJob(deps, 'acct', request, 'key-1')
    expect(retry.body.jobId).not.toBe(lost)
    expect(await runJob(deps, retry.body.jobId)).toBe('complete')
    const { balance, ledger } = await expectCreditInvariants(store, 'acct')
    expect(balance).toBe(4)
    expect(ledger.map((e) => e.type)).toEqual(['grant', 'charge'])
  })

  it('a retry with an Idempotency-Key whose job is claimed between the two reads of it is answered with that job', async () => {
    // Seen as "one Idempotency-Key created 2 jobs": the retry read no state (still queued), then the
    // reaper failed the job and removed its spec before the spec read, so the key looked abandoned.
    const { store, clock, deps } = await setup(5)
    const request = { kind: 'paid', input: { n: 1 } }
    const first = await submitJob(deps, 'acct', request, 'key-1')
    clock.advance(2 * 60_000) // past the 90 s after which a bound key without a job is free
    let raced = false
    const racing = interceptedStore(store, async (op, key, call) => {
      if (op === 'read' && key === `queue/${first.body.jobId}` && !raced) {
        raced = true
        expect(await runJob(deps, first.body.jobId)).toBe('complete')
      }
      return call()
    })
    const retry = await submitJob({ ...deps, store: racing }, 'acct', request, 'key-1')
    expect(raced).toBe(true)
    expect(retry).toMatchObject({ status: 200, replayed: true, body: { jobId: first.body.jobId, status: 'complete' } })
    expect((await expectCreditInvariants(store, 'acct')).balance).toBe(4)
  })

  it('a submit that died right after its charge: the reaper fails the never-started job and returns the charge', async () => {
    const { store, clock, deps } = await setup(5)
    // The function is killed once the charge landed: nothing it does afterwards reaches storage.
    let dead = false
    const dying = interceptedStore(store, async (op, key, call) => {
      if (dead) throw new StorageUnavailableError('function killed')
      const result = await call()
      if (op === 'replace' && key === 'account/acct') dead = true
      return result
    })
    void submitJob({ ...deps, store: dying, invokeWorker: () => new Promise<void>(() => {}) }, 'acct', { kind: 'paid', input: { n: 1 } }, null)
    while (!dead) await new Promise((resolve) => setImmediate(resolve))
    expect((await readAccount(store, 'acct'))!.record.balance).toBe(4) // charged, its job never started

    // A job that did run and completed is charged for good, next to it.
    const { body } = await submitJob(deps, 'acct', { kind: 'paid', input: { n: 2 } }, null)
    expect(await runJob(deps, body.jobId)).toBe('complete')

    clock.advance(deps.settings.queuedTimeoutMs + 1)
    expect((await reap(deps)).failed).toBe(1)
    await reap(deps)
    const { balance, ledger } = await expectCreditInvariants(store, 'acct')
    expect(balance).toBe(4)
    expect(ledger.map((e) => `${e.type}${e.type === 'refund' ? `:${e.data.reason}` : ''}`)).toEqual(['grant', 'charge', 'charge', 'refund:job failed'])
  })

  it('a stale appender whose append fills a chunk cannot change the committed log', async () => {
    // Seen while events.ts flushed a chunk eagerly (before the state write that
    // commits it): the loser of a race put its own version of the chunk, and the
    // next append dropped the winner's events from the tail — a charge vanished
    // from a ledger, a job got two terminal events.
    const store = memoryPort()
    const deps: Pick<Deps, 'store' | 'clock' | 'settings'> = testDeps(store)
    const base = { jobId: 'job_x', log: { firstSeq: 1, flushedSeq: 0, lastSeq: 0, tail: [] } } as never
    let stored = (await commitState(deps, base, null, (s) => ({ state: s, events: Array.from({ length: 9 }, () => ({ type: 'tick', data: null })) })))!
    const winner = (await commitState(deps, stored.state, stored.version, (s) => ({ state: s, events: [{ type: 'winner', data: null }] })))!
    expect(winner).not.toBeNull()
    expect(await commitState(deps, stored.state, stored.version, (s) => ({ state: s, events: [{ type: 'loser', data: null }] }))).toBeNull()
    stored = (await commitState(deps, winner.state, winner.version, (s) => ({ state: s, events: [{ type: 'next', data: null }] })))!
    expect(stored.state.log.flushedSeq).toBe(10) // events 1-10 now live only in the chunk
    const { events } = await readEvents(store, jobLog('job_x'), stored.state.log, 0, 100)
    expect(events.map((e) => e.type)).toEqual([...Array(9).fill('tick'), 'winner', 'next'])
  })

  it('ledger entries survive two concurrent charges when one fills a ledger chunk', async () => {
    const { store, deps } = await setup(20)
    // Eight entries so far (grant + 7 charges); then two submits race for entries 9 and 10.
    for (let n = 0; n < 7; n++) await submitJob(deps, 'acct', { kind: 'paid', input: { n } }, null)
    await Promise.all([
      submitJob(deps, 'acct', { kind: 'paid', input: { n: 100 } }, null),
      submitJob(deps, 'acct', { kind: 'paid', input: { n: 101 } }, null),
      submitJob(deps, 'acct', { kind: 'paid', input: { n: 102 } }, null),
    ])
    await submitJob(deps, 'acct', { kind: 'paid', input: { n: 103 } }, null)
    const { ledger } = await expectCreditInvariants(store, 'acct')
    expect(ledger.filter((e) => e.type === 'charge')).toHaveLength(11)
    expect(new Set(ledger.map((e) => e.data.jobId).filter(Boolean)).size).toBe(11)
    expect((await readLedger(store, 'acct')).length).toBe(12)
  })
})
