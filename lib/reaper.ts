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
 * It stops at its time budget and picks up the rest on the next run.
 */
import type { Deps } from './deps.ts'
import { commitState, deleteJobData, initialState, readSpec, readState, settleFinishedJob } from './job-state.ts'
import { removeReleasedLock } from './lock.ts'
import { expireReservation } from './credits.ts'
import { reapAsset } from './assets.ts'
import { EXPIRY_BUCKET_MS, bucketOf, keys } from './storage/keys.ts'
import { systemError } from './sanitize.ts'
import { isTerminal } from './types.ts'
import { expireIdempotencyRecord, forgetIdempotencyRecord } from './idempotency.ts'

export interface ReapReport {
  liveChecked: number
  failed: number
  settled: number
  expiredDeleted: number
  locksRemoved: number
  reservationsPruned: number
  /** Generated files deleted: past their retention, or orphans of jobs that did not complete. */
  assetsDeleted: number
  unfinished: boolean
}

const PARALLEL = 8

export async function reap(deps: Deps): Promise<ReapReport> {
  const startedAt = deps.clock.now()
  const outOfTime = () => deps.clock.now() - startedAt > deps.settings.reaperBudgetMs
  const report: ReapReport = { liveChecked: 0, failed: 0, settled: 0, expiredDeleted: 0, locksRemoved: 0, reservationsPruned: 0, assetsDeleted: 0, unfinished: false }

  const live = await deps.store.list(keys.specPrefix)
  const liveIds = live.keys.map((key) => key.slice(keys.specPrefix.length))
  await inBatches(liveIds, async (jobId) => {
    if (outOfTime()) return (report.unfinished = true)
    report.liveChecked++
    const outcome = await reapLiveJob(deps, jobId)
    if (outcome === 'failed') report.failed++
    if (outcome === 'settled') report.settled++
  })

  const { directories } = await deps.store.list(keys.expiryPrefix, { directories: true })
  const nowBucket = Math.floor(deps.clock.now() / EXPIRY_BUCKET_MS)
  const due = directories.map((dir) => ({ dir, bucket: bucketOf(dir.endsWith('/') ? dir : `${dir}/`) })).filter(
    ({ bucket }) => Number.isFinite(bucket) && bucket < nowBucket,
  )
  for (const { bucket } of due.sort((a, b) => a.bucket - b.bucket)) {
    if (outOfTime()) {
      report.unfinished = true
      break
    }
    const { keys: entries } = await deps.store.list(`${keys.expiryFolder(bucket)}/`)
    await inBatches(entries, async (entry) => {
      if (outOfTime()) return (report.unfinished = true)
      const name = entry.slice(entry.lastIndexOf('/') + 1)
      const [type, id = ''] = name.split('~')
      if (type === 'job') {
        const locksRemoved = await deleteExpiredJob(deps, id)
        report.expiredDeleted++
        report.locksRemoved += locksRemoved
      }
      if (type === 'reservation' && (await expireReservation(deps.store, deps.clock, id)) === 'deleted') report.reservationsPruned++
      if (type === 'asset' && (await reapAsset(deps, id)) === 'deleted') report.assetsDeleted++
      if (type === 'idem') await expireIdempotencyRecord(deps.store, deps.clock, id)
      await deps.store.delete(entry)
    })
  }
  return report
}

type LiveOutcome = 'alive' | 'failed' | 'settled'

async function reapLiveJob(deps: Deps, jobId: string): Promise<LiveOutcome> {
  const now = deps.clock.now()
  const stored = await readState(deps.store, jobId)
  if (stored && isTerminal(stored.state.status)) {
    await settleFinishedJob(deps, stored)
    return 'settled'
  }
  let base = stored?.state
  if (!base) {
    const spec = await readSpec(deps.store, jobId)
    if (!spec) return 'alive' // finished and settled between our reads
    if (spec.createdAt + deps.settings.queuedTimeoutMs > now) return 'alive'
    base = initialState(spec, now)
  } else if ((base.heartbeatAt ?? base.updatedAt) + deps.settings.heartbeatTimeoutMs > now) {
    return 'alive'
  }

  const failure = stored
    ? systemError(
        'worker_lost',
        'The job stopped responding and was ended.',
        `no heartbeat since ${new Date(base.heartbeatAt ?? base.updatedAt).toISOString()} (attempt ${base.attempt}); reaped`,
      )
    : systemError(
        'worker_never_started',
        'The job could not be started.',
        `queued since ${new Date(base.createdAt).toISOString()} and never claimed; reaped`,
      )
  // Conditional on what we read: a worker that wrote meanwhile is alive and wins.
  const done = await commitState(deps, base, stored?.version ?? null, (state) => ({
    state: { ...state, status: 'failed', finishedAt: now, lease: null, ...failure },
    events: [{ type: 'error', data: { error: failure.error } }],
  }))
  if (!done) return 'alive'
  deps.log.info('reaped a job whose worker was gone', { jobId, reason: failure.error.code })
  await settleFinishedJob(deps, done)
  return 'failed'
}

async function deleteExpiredJob(deps: Deps, jobId: string): Promise<number> {
  const stored = await readState(deps.store, jobId)
  let locksRemoved = 0
  if (stored) {
    const { lockKey, idempotencyRecord } = stored.state
    if (lockKey && (await removeReleasedLock(deps.store, deps.clock, lockKey, deps.settings.retentionMs / 2))) {
      locksRemoved++
    }
    // Only if it still names this job: after its 24 h it may serve another.
    if (idempotencyRecord) await forgetIdempotencyRecord(deps.store, deps.clock, idempotencyRecord, jobId)
  }
  await deleteJobData(deps.store, jobId)
  return locksRemoved
}

async function inBatches<T>(items: T[], work: (item: T) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += PARALLEL) {
    await Promise.all(items.slice(i, i + PARALLEL).map(work))
  }
}
