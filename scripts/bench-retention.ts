/**
 * Retention throughput of the reaper with 20 ms injected per storage
 * operation: finished jobs shaped like real ones (a released lock, 25 events
 * in two chunks and a sealed page, a share with an Idempotency-Key record
 * and its own expiry marker) are seeded into the atomic in-memory store, all due
 * at once; then the reaper runs, with a clock that follows real time, until
 * nothing is due. Runs on its own too: `node scripts/bench-retention.ts [jobs] [keyedShare]`.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Clock } from '../lib/clock.ts'
import { commitState, initialState, settleFinishedJob } from '../lib/job-state.ts'
import { acquireLock } from '../lib/lock.ts'
import { reap } from '../lib/reaper.ts'
import { expiryBucket, keys } from '../lib/storage/keys.ts'
import { type MemoryPort, memoryPort } from '../lib/storage/memory.ts'
import type { BlobListing, BlobPort } from '../lib/storage/port.ts'
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

/** `keyedShare`: the share of jobs submitted with an Idempotency-Key (each adds a record and its own expiry entry). */
export async function measureRetention(jobs: number, keyedShare = 0.5, log: (line: string) => void = () => {}): Promise<RetentionResult> {
  const memory = memoryPort()
  const seedClock = manualClock()
  const seed = testDeps(memory, { clock: seedClock })
  const started = seedClock.now()
  for (let i = 0; i < jobs; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, jobs - i) }, (_, n) => seedJob(seed, i + n, (i + n) % 100 < keyedShare * 100)))
    if (i % 2000 === 0) log(`seeded ${i}/${jobs}`)
  }

  // Everything is due: the reaper's clock starts just past retention and then follows real time.
  const base = started + seed.settings.retentionMs + 10 * 60_000
  const t0 = performance.now()
  const clock: Clock = { now: () => base + (performance.now() - t0), sleep: async (ms) => void (await sleep(ms)) }
  let ops = 0
  const store = hookedStore(indexedListing(memory), async () => {
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

/**
 * The in-memory store with its listings served from an index by the first
 * two key segments (`events/<job>`, `expiry/<bucket>`). Its own `list` sorts
 * every stored key on each call, which would charge this machine's CPU to
 * whichever reaper lists most instead of the 20 ms a listing is given here.
 */
function indexedListing(inner: MemoryPort): BlobPort {
  const groups = new Map<string, Set<string>>()
  const groupOf = (key: string) => {
    const second = key.indexOf('/', key.indexOf('/') + 1)
    return second === -1 ? null : key.slice(0, second)
  }
  const add = (key: string) => {
    const group = groupOf(key) ?? key
    if (!groups.has(group)) groups.set(group, new Set())
    groups.get(group)!.add(key)
  }
  const remove = (key: string) => {
    const group = groupOf(key) ?? key
    groups.get(group)?.delete(key)
    if (groups.get(group)?.size === 0) groups.delete(group)
  }
  for (const key of inner.snapshot().keys()) add(key)
  return {
    read: (key) => inner.read(key),
    create: async (key, data) => {
      const outcome = await inner.create(key, data)
      if (outcome.ok) add(key)
      return outcome
    },
    replace: (key, data, version) => inner.replace(key, data, version),
    put: async (key, data) => {
      await inner.put(key, data)
      add(key)
    },
    delete: async (key) => {
      await inner.delete(key)
      remove(key)
    },
    list: async (prefix, options = {}): Promise<BlobListing> => {
      const group = groupOf(prefix)
      const candidates = group !== null ? [...(groups.get(group) ?? [])] : [...groups].filter(([name]) => name.startsWith(prefix)).flatMap(([, keys]) => [...keys])
      const keys: string[] = []
      const directories = new Set<string>()
      for (const key of candidates.sort()) {
        if (!key.startsWith(prefix)) continue
        const slash = key.indexOf('/', prefix.length)
        if (options.directories && slash !== -1) directories.add(key.slice(0, slash))
        else keys.push(key)
      }
      return { keys, directories: [...directories] }
    },
  }
}

async function seedJob(deps: ReturnType<typeof testDeps>, n: number, keyed: boolean) {
  const now = deps.clock.now()
  const jobId = deps.ids('job')
  const lockKey = `bench:${jobId}`
  await acquireLock(deps.store, deps.clock, lockKey, jobId)
  const idempotencyRecord = keyed ? keys.idempotency('bench', `k${n}`) : null
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
  const keyedShare = Number(process.argv[3] ?? 0.5)
  const result = await measureRetention(jobs, keyedShare, (line) => process.stderr.write(`${line}\n`))
  console.log(JSON.stringify(result))
}
