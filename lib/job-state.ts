/**
 * Reading and writing the job's records, the one state-changing primitive
 * (`commitState`), and the clean-up every finished job goes through.
 */
import type { Deps } from './deps.ts'
import { type ChunkSource, type NewEvent, chunksFromStorage, jobLog, planAppend, planSeal } from './events.ts'
import { settleJobCredits } from './credits.ts'
import { releaseLock } from './lock.ts'
import { expiryBucket, keys } from './storage/keys.ts'
import type { BlobPort } from './storage/port.ts'
import { type JobSpec, JobSpecSchema, type JobState, JobStateSchema, isTerminal } from './types.ts'

export interface StoredState {
  state: JobState
  version: string
}

export async function readState(store: BlobPort, jobId: string): Promise<StoredState | null> {
  const blob = await store.read(keys.state(jobId))
  return blob ? { state: JobStateSchema.parse(JSON.parse(blob.data)), version: blob.version } : null
}

export async function readSpec(store: BlobPort, jobId: string): Promise<JobSpec | null> {
  const blob = await store.read(keys.spec(jobId))
  return blob ? JobSpecSchema.parse(JSON.parse(blob.data)) : null
}

/** The state a job starts with when it is claimed or canceled before it ran. */
export function initialState(spec: JobSpec, now: number): JobState {
  return {
    jobId: spec.jobId,
    account: spec.account,
    kind: spec.kind,
    status: 'queued',
    createdAt: spec.createdAt,
    startedAt: null,
    updatedAt: now,
    finishedAt: null,
    heartbeatAt: null,
    lease: null,
    attempt: 0,
    cancelRequested: false,
    progress: null,
    error: null,
    errorInternal: null,
    lockKey: spec.lockKey,
    sourceTaskId: spec.sourceTaskId,
    clientJobId: spec.clientJobId,
    idempotencyRecord: spec.idempotencyRecord,
    creditCharged: spec.creditCharged,
    reservation: spec.reservation,
    ...(spec.creditBasis === undefined ? {} : { creditBasis: spec.creditBasis }),
    assets: [],
    log: { firstSeq: 1, flushedSeq: 0, lastSeq: 0, tail: [] },
  }
}

export type Change = (state: JobState) => { state: JobState; events: NewEvent[] }

/**
 * Applies a change and its events to a job state: writes any event blobs the
 * append flushes, then the state itself, conditionally on `version` (or
 * create-only when `version` is null). Returns the new version, or null if
 * someone else wrote first.
 */
export async function commitState(
  deps: Pick<Deps, 'store' | 'clock' | 'settings'>,
  base: JobState,
  version: string | null,
  change: Change,
  chunkSource = chunksFromStorage(deps.store, jobLog(base.jobId)),
): Promise<StoredState | null> {
  const now = deps.clock.now()
  const { state: changed, events } = change(base)
  const plan = await planAppend(jobLog(base.jobId), base.log, events, now, deps.settings.maxEvents, chunkSource)
  const next: JobState = { ...changed, log: plan.log, updatedAt: now }
  const data = JSON.stringify(next)
  await Promise.all(plan.writes.map((write) => deps.store.put(write.key, write.data)))
  const key = keys.state(base.jobId)
  const outcome = version === null ? await deps.store.create(key, data) : await deps.store.replace(key, data, version)
  if (!outcome.ok) return null
  await Promise.all(plan.deletes.map((key) => deps.store.delete(key)))
  return { state: next, version: outcome.version }
}

/**
 * What every finished job goes through, in an order that makes a crash at
 * any point safe to redo: schedule its deletion, free its lock, then drop
 * it from the live index (the reaper finishes the job for anyone who died
 * before that last step).
 */
export async function settleFinishedJob(
  deps: Pick<Deps, 'store' | 'clock' | 'settings' | 'log'>,
  stored: StoredState,
  chunkSource = chunksFromStorage(deps.store, jobLog(stored.state.jobId)),
) {
  const { state } = stored
  if (!isTerminal(state.status) || state.finishedAt === null) return
  await sealFinishedLog(deps.store, stored, chunkSource)
  const bucket = expiryBucket(state.finishedAt + deps.settings.retentionMs)
  await deps.store.put(keys.expiry(bucket, 'job', state.jobId), '')
  // Files of a job that did not complete are orphans: due for deletion at the reaper's next run.
  if (state.status !== 'complete') {
    const { finishedAt } = state
    await Promise.all(state.assets.map((asset) => scheduleAssetCheck(deps.store, finishedAt, asset.assetId)))
  }
  // A job that did no work for its money gets it back, once whoever settles (credits/settle.ts).
  const credits = await settleJobCredits(deps.store, deps.clock, state)
  if (state.lockKey) {
    const released = await releaseLock(deps.store, deps.clock, state.lockKey, state.jobId)
    if (!released.released && released.reason === 'held_by_another_job') {
      deps.log.info('lock already taken by a newer job; left alone', {
        jobId: state.jobId,
        holder: released.holder?.jobId,
      })
    }
  }
  // A charge that may still land keeps the job in the live index, so the reaper settles it again.
  if (credits === 'settled') await deps.store.delete(keys.spec(state.jobId))
}

/**
 * Writes a finished log's last page so late readers replay it from pages.
 * The log can no longer grow, so the page's content is final; a conflict
 * means another settle sealed it first.
 */
async function sealFinishedLog(store: BlobPort, stored: StoredState, chunkSource: ChunkSource) {
  const plan = await planSeal(jobLog(stored.state.jobId), stored.state.log, chunkSource)
  if (!plan) return
  await store.put(plan.write.key, plan.write.data)
  await store.replace(keys.state(stored.state.jobId), JSON.stringify({ ...stored.state, log: plan.log }), stored.version)
}

/**
 * Asks the reaper to judge an asset at its first run from `at`: it deletes
 * the asset unless its job completed listing it, and asks again later while
 * the job is live. Due up to one bucket early, which is harmless: the
 * judgment reads the job, not the clock. (Retention uses its own marker.)
 */
export async function scheduleAssetCheck(store: BlobPort, at: number, assetId: string) {
  await store.put(keys.expiry(expiryBucket(at) - 1, 'asset', assetId), '')
}

/** Deletes a job and everything it wrote (retention). */
export async function deleteJobData(store: BlobPort, jobId: string) {
  const { keys: eventKeys } = await store.list(keys.eventsPrefix(jobId))
  await Promise.all(eventKeys.map((key) => store.delete(key)))
  await store.delete(keys.spec(jobId))
  await store.delete(keys.cancelRequest(jobId))
  await store.delete(keys.state(jobId))
}
