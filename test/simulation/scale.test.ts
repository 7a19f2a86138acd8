/**
 * Scale simulation: one account submitting charged jobs at 10,000 an hour,
 * on simulated time, with the real lib code over the atomic in-memory store.
 *
 * - Every storage call takes 20 ms of simulated time (calls of one function
 *   run in parallel where the code runs them in parallel), so the reaper's
 *   20 s budget and Netlify's 30 s limit for it are measured in storage round trips.
 * - Submits arrive every 360 ms for SCALE_MINUTES (default 30: 5,000 jobs),
 *   each starting its worker 50 ms later; one job in ten fails (refunded);
 *   one in four carries a client job id, so it pays through a reservation
 *   blob of its own, which the reaper removes past its hour.
 * - The reaper runs every 5 minutes, killed at 30 s like a scheduled function.
 * - Retention is 75 minutes; the run goes on with the reaper alone until
 *   every job and reservation is past it.
 *
 * Checks: the account record stays ≤ 16 KB after every charge; the credit
 * invariants hold, with exactly one charge per job and one refund per failed
 * job; no reaper run is killed or throws; after every reaper run, no job
 * finished more than retention + one bucket + one reaper period ago is left,
 * nor a reservation more than two periods past its hour.
 * If the record passes RECORD_STOP (512 KB: a record that grows with history makes
 * every charge slower), submitting stops early so the run still ends.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ReservationSchema, createAccount, readLedger } from '../../lib/credits/index.ts'
import { DEFAULT_SETTINGS, type Deps, silentLogger } from '../../lib/core/deps.ts'
import { JobFailure } from '../../lib/core/errors.ts'
import { defineJob, kindRegistry } from '../../lib/kinds/define.ts'
import { reap } from '../../lib/reaper/reap.ts'
import { EXPIRY_BUCKET_MS, keys } from '../../lib/storage/keys.ts'
import { memoryAssetPort } from '../../lib/storage/memory-assets.ts'
import { memoryPort } from '../../lib/storage/memory.ts'
import type { BlobPort } from '../../lib/storage/port.ts'
import { submitJob } from '../../lib/jobs/submit.ts'
import { runJob } from '../../lib/jobs/worker.ts'
import { expectCreditInvariants } from '../support/credit-invariants.ts'
import { type Actor, Scheduler, installDeterminism } from './scheduler.ts'

const MINUTES = Number(process.env.SCALE_MINUTES ?? 30)
const SUBMIT_EVERY_MS = 360 // 10,000 an hour
const OP_MS = 20
const REAPER_PERIOD_MS = 5 * 60_000
const RECORD_LIMIT = 16 * 1024
const RECORD_STOP = 512 * 1024
const ACCOUNT = 'busy'
const settings = { ...DEFAULT_SETTINGS, retentionMs: 75 * 60_000, heartbeatIntervalMs: 3600_000 }

const scaleTask = defineJob({
  kind: 'scale_task',
  cost: 1,
  input: z.strictObject({ n: z.number().int(), fail: z.boolean() }),
  async run({ input, emit }) {
    await emit('step', { i: 1 })
    if (input.fail) throw new JobFailure('scale_failed', 'This job was meant to fail.')
    return { n: input.n }
  },
})

/** Each call takes OP_MS of simulated time, then runs on the atomic store. */
function timed(sim: Scheduler, store: BlobPort, actor: Actor): BlobPort {
  const slow =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A) => {
      await sim.sleep(actor, OP_MS)
      return call(...args)
    }
  return {
    read: slow(store.read),
    create: slow(store.create),
    replace: slow(store.replace),
    put: slow(store.put),
    delete: slow(store.delete),
    list: slow(store.list),
  }
}

describe('scale: one account at 10,000 charged jobs an hour, reaper every 5 minutes', () => {
  it(`${MINUTES} simulated minutes keep the account record small, the credits right and retention on time`, async () => {
    const sim = new Scheduler({ seed: 1, trace: false, stepMs: 0 })
    const restore = installDeterminism(sim)
    const store = memoryPort()
    const kinds = kindRegistry([scaleTask])
    let idCounter = 0
    const ids = (prefix: string) => `${prefix}_scale${(++idCounter).toString(16).padStart(32, '0')}`
    const problems: string[] = []
    const finished = new Map<string, { at: number; failed: boolean }>()
    const deps = (actor: Actor): Deps => ({
      store: timed(sim, store, actor),
      assets: memoryAssetPort(),
      clock: sim.clockFor(actor),
      ids,
      kinds,
      settings,
      invokeWorker: async (jobId) => {
        await sim.sleep(actor, OP_MS)
        const worker = sim.spawn({ name: `worker(${jobId})`, kind: 'worker', startAt: sim.now + 50, timeLimitMs: 15 * 60_000 }, (self) => runJob(deps(self), jobId))
        void worker.outcome.then((outcome) => {
          if (outcome.value === 'complete' || outcome.value === 'failed') finished.set(jobId, { at: sim.now, failed: outcome.value === 'failed' })
          else problems.push(`worker of ${jobId} ended ${outcome.value ?? outcome.died ?? String(outcome.error)}`)
        })
      },
      log: silentLogger,
      signingSecret: 'simulation-signing-secret-of-32-characters',
    })

    let maxRecordBytes = 0
    let firstOverLimit: string | null = null
    let stoppedEarly: string | null = null
    const recordBytes = async () => (await store.read(keys.account(ACCOUNT)))?.data.length ?? 0
    const reaperRuns: { at: number; ms: number; outcome: string }[] = []
    let reservationsPeak = 0
    try {
      sim.auto = true
      await createAccount(store, sim.clockFor(sim.actors[0]!), ACCOUNT, 1_000_000)
      sim.auto = false
      const startedAt = sim.now
      const jobs = Math.round((MINUTES * 60_000) / SUBMIT_EVERY_MS)
      let submitted = 0

      sim.spawn({ name: 'clients', kind: 'client' }, async (self) => {
        for (let n = 0; n < jobs && !stoppedEarly; n++) {
          await sim.sleep(self, SUBMIT_EVERY_MS)
          const fail = n % 10 === 9
          const { outcome } = sim.spawn({ name: `submit(${n})`, kind: 'submit', timeLimitMs: 60_000 }, async (fn) => {
            const clientJobId = n % 4 === 1 ? { clientJobId: `work-${n}` } : {}
            await submitJob(deps(fn), ACCOUNT, { kind: 'scale_task', input: { n, fail }, ...clientJobId }, null)
            const bytes = await recordBytes()
            maxRecordBytes = Math.max(maxRecordBytes, bytes)
            if (bytes > RECORD_LIMIT && !firstOverLimit) firstOverLimit = `${bytes} bytes after ${n + 1} jobs (${((sim.now - startedAt) / 1000).toFixed(0)} s)`
            if (bytes > RECORD_STOP && !stoppedEarly) stoppedEarly = `submitting stopped after ${n + 1} jobs: the account record is ${bytes} bytes`
          })
          submitted++
          void outcome.then((o) => {
            if (o.error !== undefined || o.died !== undefined) problems.push(`submit ${n} ${o.died ? `died (${o.died})` : `threw ${String(o.error)}`}`)
          })
        }
      })

      const cron = sim.cron('reaper', REAPER_PERIOD_MS, startedAt + REAPER_PERIOD_MS, () => {
        const runStarted = sim.now
        const { outcome } = sim.spawn({ name: 'reaper', kind: 'reaper', timeLimitMs: 30_000 }, (self) => reap(deps(self)))
        void outcome.then((o) => {
          reaperRuns.push({ at: runStarted, ms: sim.now - runStarted, outcome: o.value ? (o.value.unfinished ? 'unfinished' : 'done') : o.died ? `killed (${o.died})` : `threw ${String(o.error)}` })
          if (!o.value) problems.push(`reaper run at +${((runStarted - startedAt) / 60_000).toFixed(0)} min ${o.died ? `was killed (${o.died})` : `threw ${String(o.error)}`}`)
          // Retention never falls behind: nothing finished longer ago than retention + one bucket + one period is left.
          const horizon = sim.now - settings.retentionMs - EXPIRY_BUCKET_MS - REAPER_PERIOD_MS
          const stored = store.snapshot()
          const late = [...finished].filter(([jobId, f]) => f.at < horizon && stored.has(keys.state(jobId)))
          if (late.length) problems.push(`retention behind at +${((sim.now - startedAt) / 60_000).toFixed(0)} min: ${late.length} jobs past retention still stored`)
          const overdue = [...stored].filter(([key, blob]) => key.startsWith('reservation/') && ReservationSchema.parse(JSON.parse(blob)).expiresAt < sim.now - 2 * REAPER_PERIOD_MS - EXPIRY_BUCKET_MS)
          if (overdue.length) problems.push(`retention behind at +${((sim.now - startedAt) / 60_000).toFixed(0)} min: ${overdue.length} reservations past their hour still stored`)
          reservationsPeak = Math.max(reservationsPeak, [...stored.keys()].filter((key) => key.startsWith('reservation/')).length)
        })
      })
      // The reaper alone, until every job is past retention and two more periods.
      const end = startedAt + MINUTES * 60_000 + settings.retentionMs + EXPIRY_BUCKET_MS + 3 * REAPER_PERIOD_MS
      sim.spawn({ name: 'operator', kind: 'client' }, async (self) => {
        while (sim.now < end) await sim.sleep(self, 60_000)
      })
      await sim.run({ stopAt: end, maxSteps: 5_000_000 })
      cron.stop()

      sim.auto = true
      const { ledger } = await expectCreditInvariants(store, ACCOUNT)
      const charges = new Map<string, number>()
      const refunds = new Map<string, number>()
      for (const entry of ledger) {
        const tally = entry.type === 'charge' ? charges : entry.type === 'refund' ? refunds : null
        if (tally && entry.data.jobId) tally.set(entry.data.jobId, (tally.get(entry.data.jobId) ?? 0) + 1)
      }
      for (const [jobId, { failed }] of finished) {
        if (charges.get(jobId) !== 1) problems.push(`${jobId}: ${charges.get(jobId) ?? 0} charges`)
        if ((refunds.get(jobId) ?? 0) !== (failed ? 1 : 0)) problems.push(`${jobId} (${failed ? 'failed' : 'complete'}): ${refunds.get(jobId) ?? 0} refunds`)
      }
      const leftover = [...store.snapshot().keys()].filter((key) => /^(job|queue|events|reservation)\//.test(key))
      if (leftover.length) problems.push(`after retention: ${leftover.length} job keys left (${leftover.slice(0, 3).join(' ')})`)
      console.log(
        `scale: ${submitted} submits over ${MINUTES} simulated min (${finished.size} jobs finished, ${[...finished.values()].filter((f) => f.failed).length} failed and refunded); ` +
          `account record max ${maxRecordBytes} bytes${firstOverLimit ? `, over 16 KB at ${firstOverLimit}` : ''}${stoppedEarly ? `; ${stoppedEarly}` : ''}; ` +
          `reservation blobs at most ${reservationsPeak}; reaper runs: ${reaperRuns.length}, longest ${Math.max(0, ...reaperRuns.map((r) => r.ms)) / 1000} s, ${reaperRuns.filter((r) => r.outcome !== 'done').length} not done; ` +
          `${(await readLedger(store, ACCOUNT)).length} ledger entries, final record ${await recordBytes()} bytes`,
      )
      expect(problems.slice(0, 20)).toEqual([])
      expect(firstOverLimit, 'the account record grew past 16 KB').toBeNull()
      expect(stoppedEarly).toBeNull()
      expect(finished.size).toBe(jobs)
    } finally {
      restore()
      sim.auto = false
    }
  }, 600_000)
})
