/**
 * A running job and its watchers on simulated time: the job's events are
 * appended (real commits, real store) when the clock reaches their times, and
 * time moves only when a watcher sleeps. Deterministic: a seed gives the same
 * event times, checks and storage reads every run.
 *
 *   const sim = await simulateJob(store, { eventTimes: poissonTimes(seed, 1000, 60_000) })
 *   ... openJobStream(sim.deps(countingStore), ...)   // sleeps drive the job
 */
import { randomBytes } from 'node:crypto'
import type { Clock } from '../../lib/core/clock.ts'
import type { Deps } from '../../lib/core/deps.ts'
import type { JobSpec } from '../../lib/core/types.ts'
import { type StoredState, commitState, initialState } from '../../lib/jobs/state.ts'
import { keys } from '../../lib/storage/keys.ts'
import type { BlobPort } from '../../lib/storage/port.ts'
import { testDeps } from './deps.ts'

export const SIM_ACCOUNT = 'acct-watch'
export const SIM_START = Date.UTC(2026, 10, 30, 12, 0, 0)

export interface SimulatedJob {
  jobId: string
  clock: Clock & { now(): number }
  /** Deps for a watcher reading through `store` (a counting wrapper of the same store). */
  deps(store: BlobPort): Deps
  /** When each event was written, by seq. */
  writtenAt: Map<number, number>
  /** Whether the terminal event is written. */
  readonly finished: boolean
}

/** Event times (ms from the start) with exponential gaps of the given mean: a memoryless source. */
export function poissonTimes(seed: number, meanMs: number, untilMs: number): number[] {
  const random = mulberry32(seed)
  const times: number[] = []
  for (let t = -Math.log(1 - random()) * meanMs; t < untilMs; t += -Math.log(1 - random()) * meanMs) times.push(Math.round(t))
  return times
}

/**
 * Creates a running job whose events land at `eventTimes` (ms after the
 * start); `finishAt` appends the terminal `done`. The first event is
 * `started` at time 0.
 */
export async function simulateJob(
  store: BlobPort,
  {
    eventTimes,
    finishAt,
    claimAt,
    jobId = `job_simulate${randomBytes(16).toString('hex')}`,
  }: { eventTimes: number[]; finishAt?: number; jobId?: string; /** Queued (spec only) until then; the worker's claim writes `started`. */ claimAt?: number },
): Promise<SimulatedJob> {
  let now = SIM_START
  const writerDeps = testDeps(store, { clock: { now: () => now, sleep: async () => {} } })
  const spec: JobSpec = {
    jobId,
    account: SIM_ACCOUNT,
    kind: 'summarize',
    input: {},
    createdAt: now,
    lockKey: null,
    sourceTaskId: null,
    clientJobId: null,
    idempotencyRecord: null,
    creditCharged: 0,
    reservation: null,
  }
  let current: StoredState | null = null
  const writtenAt = new Map<number, number>()
  const claim = async () => {
    current = (await commitState(writerDeps, initialState(spec, now), null, (s) => ({
      state: { ...s, status: 'running', startedAt: now },
      events: [{ type: 'started', data: null }],
    })))!
    writtenAt.set(1, now)
  }
  await store.put(keys.spec(jobId), JSON.stringify(spec))
  if (claimAt === undefined) await claim()
  const due: { at: number; done: boolean; claim?: true }[] = [...eventTimes.map((at) => ({ at: SIM_START + at, done: false }))]
  if (claimAt !== undefined) due.push({ at: SIM_START + claimAt, done: false, claim: true })
  if (finishAt !== undefined) due.push({ at: SIM_START + finishAt, done: true })
  due.sort((a, b) => a.at - b.at)
  let finished = false
  let tick = 0

  const write = async (done: boolean) => {
    if (!current) throw new Error('simulated job: an event before its claim')
    tick++
    const next = await commitState(writerDeps, current.state, current.version, (s) =>
      done
        ? { state: { ...s, status: 'complete', finishedAt: now, result: { ticks: tick } }, events: [{ type: 'done', data: { result: { ticks: tick } } }] }
        : { state: s, events: [{ type: 'tick', data: { tick } }] },
    )
    if (!next) throw new Error('simulated job: lost its own write')
    current = next
    writtenAt.set(next.state.log.lastSeq, now)
    if (done) finished = true
  }

  const clock = {
    now: () => now,
    async sleep(ms: number) {
      const until = now + Math.max(0, ms)
      while (due.length > 0 && due[0]!.at <= until && !finished) {
        const item = due.shift()!
        now = Math.max(now, item.at)
        await (item.claim ? claim() : write(item.done))
      }
      now = until
    },
  }
  return {
    jobId,
    clock,
    deps: (watcherStore) => testDeps(watcherStore, { clock }),
    writtenAt,
    get finished() {
      return finished
    },
  }
}

/** Small seeded PRNG (mulberry32), so simulated runs repeat exactly. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
