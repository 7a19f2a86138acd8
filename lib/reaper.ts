/**
 * The reaper, run on a schedule. Its work scales with what is live or due,
 * never with everything stored:
 * - live jobs are found through `queue/` (a spec exists only while its job
 *   is live): a job whose worker stopped writing is failed, with a terminal
 *   `error` event so pollers stop; a finished job whose worker died before
 *   cleaning up is settled (lock freed, deletion scheduled);
 * - deletions are found through time buckets under `expiry/`: only buckets
 *   that are due are listed. Generated files are found the same way: each
 *   has a retention marker and orphan checks (see `assets.ts`).
 * It stops taking work at its time budget. Both walks go on from where the
 * last run stopped (see `reaper-run.ts`), and one item that fails (an
 * unreadable record, storage errors, a write that keeps losing) is logged,
 * counted and left for a later pass without stopping the run.
 */
import type { Deps } from './deps.ts'
import { expireReservation } from './credits.ts'
import { reapAsset } from './assets.ts'
import { CorruptRecordError } from './records.ts'
import { expireIdempotencyRecord } from './idempotency.ts'
import { reapLiveJob, retireJob } from './reaper-jobs.ts'
import { type PoolOutcome, REAPER_PARALLEL, type ReaperCursor, describeFailure, readCursor, rotateAfter, runPool, writeCursor } from './reaper-run.ts'
import { EXPIRY_BUCKET_MS, bucketOf, keys } from './storage/keys.ts'

export interface ReapReport {
  liveChecked: number
  failed: number
  settled: number
  expiredDeleted: number
  locksRemoved: number
  reservationsPruned: number
  /** Generated files deleted: past their retention, or orphans of jobs that did not complete. */
  assetsDeleted: number
  /** Items that threw (left in place for a later pass), unreadable records included. */
  itemsFailed: number
  /** Of those, items whose record could not be parsed: they wait for an operator. */
  recordsUnreadable: number
  unfinished: boolean
}

/** While retention work is due, live checks may use this share of the budget. */
const LIVE_SHARE = 0.5

export async function reap(deps: Deps): Promise<ReapReport> {
  const startedAt = deps.clock.now()
  const budget = deps.settings.reaperBudgetMs
  const report: ReapReport = {
    liveChecked: 0, failed: 0, settled: 0, expiredDeleted: 0, locksRemoved: 0, reservationsPruned: 0, assetsDeleted: 0,
    itemsFailed: 0, recordsUnreadable: 0, unfinished: false,
  }
  const failed = (item: string, error: unknown) => {
    report.itemsFailed++
    if (error instanceof CorruptRecordError) report.recordsUnreadable++
    deps.log.error('reaper: item failed; left for a later run', { item, ...describeFailure(error) })
  }

  // A listing that fails skips its half of the run, not the other half.
  const listed = (prefix: string, directories: boolean) =>
    deps.store.list(prefix, { directories }).catch((error: unknown) => {
      failed(prefix, error)
      report.unfinished = true
      return { keys: [], directories: [] }
    })
  const [cursor, live, expiryDirs] = await Promise.all([
    readCursor(deps.store, deps.log),
    listed(keys.specPrefix, false),
    listed(keys.expiryPrefix, true),
  ])
  const nowBucket = Math.floor(startedAt / EXPIRY_BUCKET_MS)
  const due = expiryDirs.directories
    .map((dir) => bucketOf(dir.endsWith('/') ? dir : `${dir}/`))
    .filter((bucket) => Number.isFinite(bucket) && bucket < nowBucket)
    .sort((a, b) => a - b)

  const liveDeadline = startedAt + (due.length > 0 ? LIVE_SHARE : 1) * budget
  const liveOutOfTime = () => deps.clock.now() - startedAt > budget || deps.clock.now() > liveDeadline
  const checkLive = async (key: string) => {
    report.liveChecked++
    const outcome = await reapLiveJob(deps, key.slice(keys.specPrefix.length))
    if (outcome === 'failed') report.failed++
    if (outcome === 'settled') report.settled++
  }
  // A storage error is usually brief, and a dead worker's job should not wait a whole
  // period for the next run: each live job that hit one is checked once more in this run.
  const retry: { key: string; error: unknown }[] = []
  const liveRun = await runPool(rotateAfter([...live.keys].sort(), cursor.live), REAPER_PARALLEL, liveOutOfTime, checkLive, (key, error) =>
    error instanceof CorruptRecordError ? failed(key, error) : retry.push({ key, error }),
  )
  const retried = await runPool(retry.map(({ key }) => key), REAPER_PARALLEL, liveOutOfTime, checkLive, failed)
  for (const { key, error } of retry.slice(retried.taken)) failed(key, error)

  const expiryRun = await reapDueEntries(
    deps,
    due,
    cursor.expiry,
    () => deps.clock.now() - startedAt > budget,
    (entry) => reapExpiryEntry(deps, entry, report),
    failed,
  )

  report.unfinished ||= liveRun.stopped || expiryRun.stopped
  // Only a run that stopped early leaves work whose order matters; a complete pass needs no cursor.
  const next: ReaperCursor = { live: liveRun.last ?? cursor.live, expiry: expiryRun.last ?? cursor.expiry }
  if (report.unfinished && (next.live !== cursor.live || next.expiry !== cursor.expiry)) {
    await writeCursor(deps.store, next).catch((error) => deps.log.error('reaper: cursor not saved', describeFailure(error)))
  }
  return report
}

/** One due entry, `expiry/<bucket>/<type>~<id>`, deleted once its work is done (a job's, with the job's state). */
async function reapExpiryEntry(deps: Deps, entry: string, report: ReapReport) {
  const name = entry.slice(entry.lastIndexOf('/') + 1)
  const [type, id = ''] = name.split('~')
  if (type === 'job') {
    report.locksRemoved += await retireJob(deps, id, entry)
    report.expiredDeleted++
    return
  }
  if (type === 'reservation' && (await expireReservation(deps.store, deps.clock, id)) === 'deleted') report.reservationsPruned++
  if (type === 'asset' && (await reapAsset(deps, id)) === 'deleted') report.assetsDeleted++
  if (type === 'idem') await expireIdempotencyRecord(deps.store, deps.clock, id)
  await deps.store.delete(entry)
}

/**
 * Every due entry once, bucket by bucket, starting just after `after` and
 * wrapping around to the entries before it. A bucket's entries all end
 * before the next bucket's start: an account's reservations are pruned
 * while the jobs they charged still exist (the prune asks), and their
 * retention comes in a later bucket. The next bucket is listed while this
 * one is worked on; a bucket that cannot be listed is skipped this run.
 */
async function reapDueEntries(
  deps: Deps,
  buckets: number[],
  after: string | null,
  outOfTime: () => boolean,
  work: (entry: string) => Promise<void>,
  failed: (item: string, error: unknown) => void,
): Promise<Pick<PoolOutcome, 'last' | 'stopped'>> {
  const startBucket = after === null ? null : bucketOf(after)
  const first = startBucket === null ? 0 : buckets.findIndex((bucket) => bucket >= startBucket)
  const order = first <= 0 ? buckets : [...buckets.slice(first), ...buckets.slice(0, first)]
  const listing = (bucket: number) =>
    deps.store.list(`${keys.expiryFolder(bucket)}/`).then(
      ({ keys: entries }) => entries.sort(),
      (error: unknown) => {
        failed(keys.expiryFolder(bucket), error)
        return [] as string[]
      },
    )
  let last: string | null = null
  let heldBack: string[] = []
  let next = order.length > 0 ? listing(order[0]!) : null
  for (let i = 0; i <= order.length; i++) {
    let entries: string[]
    if (i < order.length) {
      entries = await next!
      next = i + 1 < order.length ? listing(order[i + 1]!) : null
      if (order[i] === startBucket && after !== null) {
        heldBack = entries.filter((entry) => entry <= after)
        entries = entries.filter((entry) => entry > after)
      }
    } else {
      entries = heldBack // the cursor's own bucket, before the cursor: items a previous run left
    }
    const outcome = await runPool(entries, REAPER_PARALLEL, outOfTime, work, failed)
    last = outcome.last ?? last
    if (outcome.stopped) return { last, stopped: true }
  }
  return { last, stopped: false }
}
