/**
 * Retention throughput of the reaper with 20 ms injected per storage
 * operation: finished jobs shaped like real ones (a released lock, 25 events
 * in two chunks and a sealed page, half with an Idempotency-Key record and
 * its own expiry marker) are seeded into the atomic in-memory store, all due
 * at once; then the reaper runs, with a clock that follows real time, until
 * nothing is due. Runs on its own too: `node scripts/bench-retention.ts [jobs]`.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Clock } from '../lib/clock.ts'
import { commitState, initialState, settleFinishedJob } from '../lib/job-state.ts'
import { acquireLock } from '../lib/lock.ts'
import { reap } from '../lib/reaper.ts'
import { expiryBucket, keys } from '../lib/storage/keys.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import type { JobSpec } from '../lib/types.ts'
import { manualClock, testDeps } from '../test/support/deps.ts'
import { hookedStore } from '../test/support/hooked-store.ts'

export const INJECTED_MS = 20

export interface RetentionRun {
  ms: number
  retired: number
  entries: number
}

export interface RetentionResult {
  jobs: number
  runs: RetentionRun[]
  ops: number
  budgetMs: number
  left: number
}

export async function measureRetention(jobs: number, log: (line: string) => void = () => {}): Promise<RetentionResult> {
  const memory = memoryPort()
  const seedClock = manualClock()
  const seed = testDeps(memory, { clock: seedClock })
  const started = seedClock.now()
  for (let i = 0; i < jobs; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, jobs - i) }, (_, n) => seedJob(seed, i + n)))
    if (i % 2000 === 0) log(`seeded ${i}/${jobs}`)
  }

  // Everything is due: the reaper's clock starts just past retention and then follows real time.
  const base = started + seed.settings.retentionMs + 10 * 60_000
  const t0 = performance.now()
  const clock: Clock = { now: () => base + (performance.now() - t0), sleep: async (ms) => void (await sleep(ms)) }
  let ops = 0
  const store = hookedStore(memory, async () => {
    ops++
    await sleep(INJECTED_MS)
  })
  const deps = testDeps(store, { clock })
  const runs: RetentionRun[] = []
  const due = () => [...memory.snapshot().keys()].filter((key) => key.startsWith(keys.expiryPrefix)).length
  while (due() > 0 && runs.length < 40) {
    const before = performance.now()
    const entries = due()
    const report = await reap(deps)
    runs.push({ ms: performance.now() - before, retired: report.expiredDeleted, entries: entries - due() })
    log(`run ${runs.length}: ${report.expiredDeleted} jobs retired in ${((performance.now() - before) / 1000).toFixed(1)} s`)
  }
  const left = [...memory.snapshot().keys()].filter((key) => /^(job|events|queue|lock|idem|expiry)\//.test(key)).length
  return { jobs, runs, ops, budgetMs: deps.settings.reaperBudgetMs, left }
}

async function seedJob(deps: ReturnType<typeof testDeps>, n: number) {
  const now = deps.clock.now()
  const jobId = deps.ids('job')
  const lockKey = `bench:${jobId}`
  await acquireLock(deps.store, deps.clock, lockKey, jobId)
  const idempotencyRecord = n % 2 === 0 ? keys.idempotency('bench', `k${n}`) : null
  if (idempotencyRecord) {
    await deps.store.put(idempotencyRecord, JSON.stringify({ jobId, requestHash: 'h', createdAt: now, expiresAt: now + 24 * 3600_000 }))
    await deps.store.put(keys.expiry(expiryBucket(now + 24 * 3600_000), 'idem', `bench.k${n}`), '')
  }
  const spec: JobSpec = {
    jobId, account: 'bench', kind: 'summarize', input: {}, createdAt: now,
    lockKey, sourceTaskId: null, clientJobId: null, idempotencyRecord, creditCharged: 0, reservation: null,
  }
  await deps.store.put(keys.spec(jobId), JSON.stringify(spec))
  const running = await commitState(deps, initialState(spec, now), null, (s) => ({
    state: { ...s, status: 'running', lease: 'bench', attempt: 1, startedAt: now, heartbeatAt: now },
    events: Array.from({ length: 14 }, (_, i) => ({ type: 'window_complete', data: { i } })),
  }))
  const tail = await commitState(deps, running!.state, running!.version, (s) => ({
    state: s,
    events: Array.from({ length: 10 }, (_, i) => ({ type: 'progress', data: { i } })),
  }))
  const done = await commitState(deps, tail!.state, tail!.version, (s) => ({
    state: { ...s, status: 'complete', finishedAt: now, result: { n } },
    events: [{ type: 'done', data: { result: { n } } }],
  }))
  await settleFinishedJob(deps, done!)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const jobs = Number(process.argv[2] ?? 10_000)
  const result = await measureRetention(jobs, (line) => process.stderr.write(`${line}\n`))
  console.log(JSON.stringify(result))
}
