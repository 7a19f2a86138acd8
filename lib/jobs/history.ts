/**
 * What the operator console reads about finished jobs, written once when a
 * job is settled, so the console never lists or reads every job:
 *
 * - an index entry per finished job, `expiry/<bucket>/done~<job>~<status>~<kind>~<account>`,
 *   empty, in the job's own retention bucket: a list of one bucket gives the
 *   jobs that finished in those 5 minutes with what the filters need, and the
 *   reaper deletes the entry with the job (deleting a due entry is all it does
 *   for a type it does not know);
 * - an hourly rollup per shard, `expiry/<bucket>/stats~<hour>.<shard>`: counts
 *   by status, a duration histogram per kind and failure codes, each capped,
 *   so a record never grows with the number of jobs. It sits in the bucket of
 *   its hour's start plus retention, so it goes when that hour's first jobs go.
 *
 * The rollup is changed only by conditional writes, and only by the settle
 * that created the job's index entry: a settle that runs again (a crash
 * redone) counts nothing twice. Both are best effort: a failure is logged and
 * never stops a job from being settled.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import type { Deps } from '../core/deps.ts'
import type { JobState } from '../core/types.ts'
import { parseRecord } from '../core/records.ts'
import { expiryBucket, keys } from '../storage/keys.ts'
import type { BlobPort } from '../storage/port.ts'

export const HOUR_MS = 3600_000
/** Rollups per hour: settles of one hour spread their conditional writes over these. */
export const ROLLUP_SHARDS = 4
/** Upper bounds (ms) of the duration histogram; the last bucket is everything longer. */
export const DURATION_BOUNDS_MS = [250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000] as const
/** Distinct kinds and failure codes a rollup keeps; the rest are counted as `other`. */
export const ROLLUP_MAX_NAMES = 40
/** Conditional-write rounds before a rollup update gives up, with jittered backoff between them. */
const ROLLUP_ROUNDS = 16
const ROLLUP_BACKOFF_MS = 10
const ROLLUP_BACKOFF_CAP_MS = 1_000

export const RollupSchema = z.object({
  hour: z.number(),
  counts: z.record(z.string(), z.number().int().nonnegative()),
  /** Per kind: jobs that started and finished, and how many fell in each duration bucket. */
  durations: z.record(z.string(), z.object({ count: z.number().int().nonnegative(), histogram: z.array(z.number().int().nonnegative()) })),
  failures: z.record(z.string(), z.number().int().nonnegative()),
})
export type Rollup = z.infer<typeof RollupSchema>

/** One finished job as its index entry names it. */
export interface FinishedEntry {
  bucket: number
  jobId: string
  status: string
  kind: string
  account: string
}

const DONE = 'done~'
const STATS = 'stats~'
/** Key parts are checked where they are made (ids, kinds, accounts); a `~` or `/` never gets in. */
const clean = (part: string) => part.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 128)

export const historyKeys = {
  /** The bucket a finished job's entry is in: its retention bucket. */
  bucketOf: (finishedAt: number, retentionMs: number) => expiryBucket(finishedAt + retentionMs),
  entry: (bucket: number, state: Pick<JobState, 'jobId' | 'status' | 'kind' | 'account'>) =>
    `${keys.expiryFolder(bucket)}/${DONE}${[state.jobId, state.status, state.kind, state.account].map(clean).join('~')}`,
  entryPrefix: (bucket: number) => `${keys.expiryFolder(bucket)}/${DONE}`,
  hourOf: (at: number) => Math.floor(at / HOUR_MS) * HOUR_MS,
  rollup: (hour: number, shard: number, retentionMs: number) => `${keys.expiryFolder(expiryBucket(hour + retentionMs))}/${STATS}${hour}.${shard}`,
}

/** Reads an index entry's name back; null for anything else in the bucket. */
export function parseFinishedEntry(key: string): FinishedEntry | null {
  const slash = key.lastIndexOf('/')
  const name = key.slice(slash + 1)
  if (!name.startsWith(DONE)) return null
  const [jobId, status, kind, account] = name.slice(DONE.length).split('~')
  if (!jobId || !status || !kind || !account) return null
  return { bucket: Number(key.slice(keys.expiryPrefix.length, slash)), jobId, status, kind, account }
}

/** Records a finished job for the console; never throws. */
export async function recordFinishedJob(deps: Pick<Deps, 'store' | 'settings' | 'log' | 'clock'>, state: JobState) {
  if (state.finishedAt === null) return
  const entry = historyKeys.entry(historyKeys.bucketOf(state.finishedAt, deps.settings.retentionMs), state)
  try {
    if (!(await deps.store.create(entry, '')).ok) return // indexed (and counted) by an earlier settle
  } catch (error) {
    deps.log.error('job history not recorded', { jobId: state.jobId, error: describe(error) })
    return
  }
  try {
    await addToRollup(deps, state)
  } catch (error) {
    // Without its count the entry would stop any later settle of this job from counting it: take it back.
    await deps.store.delete(entry).catch(() => {})
    deps.log.error('job history not counted', { jobId: state.jobId, error: describe(error) })
  }
}

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error))

const shardOf = (jobId: string) => createHash('sha256').update(jobId).digest()[0]! % ROLLUP_SHARDS

async function addToRollup({ store, clock, settings }: Pick<Deps, 'store' | 'clock' | 'settings'>, state: JobState) {
  const hour = historyKeys.hourOf(state.finishedAt!)
  const key = historyKeys.rollup(hour, shardOf(state.jobId), settings.retentionMs)
  for (let round = 0; round < ROLLUP_ROUNDS; round++) {
    // Full jitter: settles that collided spread out instead of colliding again.
    if (round > 0) await clock.sleep(Math.random() * Math.min(ROLLUP_BACKOFF_CAP_MS, ROLLUP_BACKOFF_MS * 2 ** round))
    const blob = await store.read(key)
    const base = blob ? parseRecord(key, blob.data, RollupSchema) : emptyRollup(hour)
    const data = JSON.stringify(countJob(base, state))
    if ((blob ? await store.replace(key, data, blob.version) : await store.create(key, data)).ok) return
  }
  throw new Error(`${key} kept changing`)
}

export const emptyRollup = (hour: number): Rollup => ({ hour, counts: {}, durations: {}, failures: {} })

/** Adds one finished job to a rollup, keeping every map within ROLLUP_MAX_NAMES names. */
export function countJob(rollup: Rollup, state: Pick<JobState, 'status' | 'kind' | 'startedAt' | 'finishedAt' | 'error'>): Rollup {
  const next: Rollup = structuredClone(rollup)
  next.counts[state.status] = own(next.counts, state.status, 0) + 1
  if (state.startedAt !== null && state.finishedAt !== null) {
    const kind = capped(next.durations, state.kind)
    const row = own(next.durations, kind, null) ?? (next.durations[kind] = { count: 0, histogram: DURATION_BOUNDS_MS.map(() => 0).concat(0) })
    row.count += 1
    const ms = Math.max(0, state.finishedAt - state.startedAt)
    const index = DURATION_BOUNDS_MS.findIndex((bound) => ms <= bound)
    row.histogram[index === -1 ? DURATION_BOUNDS_MS.length : index]! += 1
  }
  if (state.status === 'failed') {
    const code = capped(next.failures, state.error?.code ?? 'unknown')
    next.failures[code] = own(next.failures, code, 0) + 1
  }
  return next
}

// Names come from kinds and failure codes: `toString` or `constructor` must read as absent, not as Object's own.
function own<T, F>(map: Record<string, T>, name: string, fallback: F): T | F {
  return Object.hasOwn(map, name) ? map[name]! : fallback
}

function capped(map: Record<string, unknown>, name: string) {
  const cleaned = clean(name)
  return Object.hasOwn(map, cleaned) || Object.keys(map).length < ROLLUP_MAX_NAMES - 1 ? cleaned : 'other'
}

/** Reads a rollup; null when that hour had no finished job in that shard. */
export async function readRollup(store: BlobPort, hour: number, shard: number, retentionMs: number): Promise<Rollup | null> {
  const key = historyKeys.rollup(hour, shard, retentionMs)
  const blob = await store.read(key)
  return blob ? parseRecord(key, blob.data, RollupSchema) : null
}
