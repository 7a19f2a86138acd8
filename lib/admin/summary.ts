/**
 * The last 24 hours at a glance: finished jobs by status, p50/p95 run time by
 * kind, the commonest failure codes, and how many jobs are live. Read from
 * the hourly rollups (jobs/history.ts): 24 hours × ROLLUP_SHARDS reads and a
 * list of `queue/` and one of `waiting/`, whatever the number of jobs. Durations come from a
 * histogram, so a percentile is the upper bound of its bucket ("at most").
 */
import type { Deps } from '../core/deps.ts'
import { iso } from '../core/clock.ts'
import { CorruptRecordError } from '../core/records.ts'
import { DURATION_BOUNDS_MS, HOUR_MS, ROLLUP_SHARDS, type Rollup, historyKeys, readRollup } from '../jobs/history.ts'
import { keys } from '../storage/keys.ts'
import type { Summary } from './schemas.ts'

export const SUMMARY_HOURS = 24
const TOP_FAILURES = 10

/**
 * The hours that started within the last day (the current one so far), and
 * no further back than retention: a rollup goes when its hour's first jobs do.
 */
export async function summary(deps: Deps): Promise<Summary> {
  const now = deps.clock.now()
  const current = historyKeys.hourOf(now)
  const hours = Array.from({ length: SUMMARY_HOURS }, (_, i) => current - i * HOUR_MS).filter((hour) => hour + deps.settings.retentionMs > now)
  const reads = hours.flatMap((hour) => Array.from({ length: ROLLUP_SHARDS }, (_, shard) => ({ hour, shard })))
  let unreadable = 0
  const [rollups, live, waiting] = await Promise.all([
    Promise.all(
      reads.map(({ hour, shard }) =>
        readRollup(deps.store, hour, shard, deps.settings.retentionMs).catch((error: unknown) => {
          if (!(error instanceof CorruptRecordError)) throw error
          unreadable++
          return null
        }),
      ),
    ),
    deps.store.list(keys.specPrefix),
    deps.store.list(keys.waitingPrefix),
  ])
  const merged = merge(rollups.filter((r): r is Rollup => r !== null))
  return {
    from: iso(hours.at(-1) ?? current)!,
    to: iso(now)!,
    hours: hours.length,
    counts: merged.counts,
    live: live.keys.length + waiting.keys.length,
    durations: Object.entries(merged.durations)
      .map(([kind, row]) => ({ kind, count: row.count, p50Ms: percentile(row.histogram, 0.5), p95Ms: percentile(row.histogram, 0.95) }))
      .sort((a, b) => b.count - a.count || a.kind.localeCompare(b.kind)),
    failures: Object.entries(merged.failures)
      .map(([code, count]) => ({ code, count }))
      .sort((a, b) => b.count - a.count || a.code.localeCompare(b.code))
      .slice(0, TOP_FAILURES),
    reads: reads.length,
    unreadable,
  }
}

function merge(rollups: Rollup[]) {
  const counts: Record<string, number> = {}
  const durations: Record<string, { count: number; histogram: number[] }> = {}
  const failures: Record<string, number> = {}
  for (const rollup of rollups) {
    for (const [status, n] of Object.entries(rollup.counts)) counts[status] = (counts[status] ?? 0) + n
    for (const [code, n] of Object.entries(rollup.failures)) failures[code] = (failures[code] ?? 0) + n
    for (const [kind, row] of Object.entries(rollup.durations)) {
      const into = (durations[kind] ??= { count: 0, histogram: DURATION_BOUNDS_MS.map(() => 0).concat(0) })
      into.count += row.count
      row.histogram.forEach((n, i) => (into.histogram[i] = (into.histogram[i] ?? 0) + n))
    }
  }
  return { counts, durations, failures }
}

/** The upper bound of the bucket holding quantile `q`; null past the largest bound (or with no data). */
export function percentile(histogram: readonly number[], q: number): number | null {
  const total = histogram.reduce((sum, n) => sum + n, 0)
  if (total === 0) return null
  const rank = Math.ceil(q * total)
  let seen = 0
  for (const [i, n] of histogram.entries()) {
    seen += n
    if (seen >= rank) return DURATION_BOUNDS_MS[i] ?? null
  }
  return null
}
