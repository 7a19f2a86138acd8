/**
 * Reading and writing the job's records, the one state-changing primitive
 * (`commitState`), and the clean-up every finished job goes through.
 */
import type { Deps } from '../core/deps.ts'
import { CHUNK_SIZE, type ChunkSource, type NewEvent, PAGE_SIZE, chunksFromStorage, jobLog, planAppend, planSeal } from '../events/log.ts'
import { settleJobCredits } from '../credits/index.ts'
import { releaseAndStartNext } from './launch.ts'
import { giveBackAccountSlot } from './account-turn.ts'
import { expiryBucket, keys } from '../storage/keys.ts'
import { addDue } from '../schedule/due-index.ts'
import type { BlobPort } from '../storage/port.ts'
import { type JobSpec, type JobState, type LogPosition, isTerminal } from '../core/types.ts'

import { STORAGE_CONCURRENCY, mapBounded } from '../core/concurrency.ts'
import type { StoredState } from './records.ts'

export { type StoredState, readFailedSpec, readSpec, readState } from './records.ts'

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
    ...(spec.runAt === undefined ? {} : { runAt: spec.runAt }),
    ...(spec.maxAttempts === undefined ? {} : { maxAttempts: spec.maxAttempts }),
    ...(spec.webhookUrl === undefined ? {} : { webhookUrl: spec.webhookUrl }),
    ...(spec.usesAccountSlot ? { usesAccountSlot: true as const } : {}),
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
  deps: Pick<Deps, 'store' | 'clock' | 'settings' | 'log' | 'recordFinished' | 'invokeWorker'>,
  stored: StoredState,
  chunkSource = chunksFromStorage(deps.store, jobLog(stored.state.jobId)),
): Promise<{ webhookEntry: string | null }> {
  const { state } = stored
  let webhookEntry: string | null = null
  if (!isTerminal(state.status) || state.finishedAt === null) return { webhookEntry }
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
  // The slot first: a job the lock is handed to next may be of this account.
  if (state.usesAccountSlot) await giveBackAccountSlot(deps, state.account, state.jobId)
  if (state.lockKey) {
    // Hands the lock to the next job waiting for the resource, and starts it.
    const released = await releaseAndStartNext(deps, state.lockKey, state.jobId)
    if (!released.released && released.reason === 'held_by_another_job') {
      deps.log.info('lock already taken by a newer job; left alone', {
        jobId: state.jobId,
        holder: released.holder?.jobId,
      })
    }
  }
  // After the lock is free, so the console's history never holds up the next job on the resource.
  await deps.recordFinished?.(deps, state)
  // Filed for now, never for a time the dispatcher has passed (a settle redone by the reaper runs
  // minutes after the finish); before the job leaves the live index, so a settle that dies first
  // is redone by the reaper, which files it again (handling it twice sends nothing twice).
  if (state.webhookUrl) webhookEntry = (await addDue(deps.store, deps.clock.now(), 'webhook', state.jobId)).key
  // A charge that may still land keeps the job in the live index, so the reaper settles it again
  // (a job canceled while it waited is put there: the reaper does not walk `waiting/`).
  if (credits === 'undecided') {
    await keepForReaper(deps.store, state.jobId)
    return { webhookEntry }
  }
  if (state.status === 'failed') await keepFailedSpec(deps.store, state.jobId)
  // The waiting copy first: should its delete fail, the job stays in the live index and is settled again.
  await deps.store.delete(keys.waitingSpec(state.jobId))
  await deps.store.delete(keys.spec(state.jobId))
  return { webhookEntry }
}

async function keepForReaper(store: BlobPort, jobId: string) {
  const waiting = await store.read(keys.waitingSpec(jobId))
  if (waiting) await store.create(keys.spec(jobId), waiting.data)
}

/**
 * A failed job's input would go with its spec: a copy is kept until
 * retention so an operator can run the job again (admin/actions.ts). Copied
 * before the spec is deleted, so a crash between the two copies it again.
 * A job that failed while it waited has its spec in `waiting/`.
 */
async function keepFailedSpec(store: BlobPort, jobId: string) {
  const spec = (await store.read(keys.spec(jobId))) ?? (await store.read(keys.waitingSpec(jobId)))
  if (spec) await store.put(keys.failedSpec(jobId), spec.data)
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

/**
 * Deletes a job and everything it wrote (retention), the state last: it is
 * what says which other blobs exist, so a crash midway is redone from it.
 * `alongside` are clean-ups that needed the state (its lock, its
 * Idempotency-Key record); they run with the first wave, and the state is
 * kept if any of them fails. `marker`, the expiry entry that scheduled this,
 * is deleted together with the state; should the state's delete fail after
 * the marker's landed, the marker is put back so the deletion is retried.
 */
export async function deleteJobData(
  store: BlobPort,
  jobId: string,
  state: JobState | null,
  options: { alongside?: (Promise<unknown> | null)[]; marker?: string } = {},
) {
  const eventKeys = async () => {
    const derived = state && eventBlobKeys(jobId, state.log)
    return derived ?? (await store.list(keys.eventsPrefix(jobId))).keys
  }
  await Promise.all([
    ...(options.alongside ?? []),
    eventKeys().then((found) => Promise.all(found.map((key) => store.delete(key)))),
    store.delete(keys.spec(jobId)),
    state === null || state.status === 'failed' ? store.delete(keys.failedSpec(jobId)) : null,
    state === null || state.webhookUrl ? store.delete(keys.webhookDelivery(jobId)) : null,
    store.delete(keys.waitingSpec(jobId)),
    // The cancel marker may exist whatever the state says (a cancel that gave up as job_busy).
    store.delete(keys.cancelRequest(jobId)),
    // Stored step results: a job marks itself before its first step stores one (jobs/steps.ts).
    state === null || state.stepsCompleted !== undefined ? deleteStepResults(store, jobId) : null,
  ])
  const { marker } = options
  const [stateDeleted, markerDeleted] = await Promise.allSettled([store.delete(keys.state(jobId)), marker ? store.delete(marker) : null])
  if (stateDeleted.status === 'rejected') {
    if (marker && markerDeleted.status === 'fulfilled') await store.put(marker, '')
    throw stateDeleted.reason
  }
  if (markerDeleted.status === 'rejected') throw markerDeleted.reason
}

/** One listing of the job's own `steps/<jobId>/` folder: bounded by the job, not by what else is stored. */
async function deleteStepResults(store: BlobPort, jobId: string) {
  const { keys: found } = await store.list(keys.stepsPrefix(jobId))
  await mapBounded(found, STORAGE_CONCURRENCY, (key) => store.delete(key))
}

/**
 * The event blobs a log can have left, derived from its position so that
 * retention needs no `list`. Null when only a listing is sure: the cap
 * dropped pages, and a writer that died between its state write and those
 * deletes leaves blobs before `firstSeq` that no position names.
 */
export function eventBlobKeys(jobId: string, log: LogPosition): string[] | null {
  if (log.firstSeq > 1) return null
  const found = new Set<string>()
  for (let c = 0; c < log.flushedSeq / CHUNK_SIZE; c++) found.add(keys.chunk(jobId, c))
  for (let p = 0; p < Math.floor(log.flushedSeq / PAGE_SIZE); p++) found.add(keys.page(jobId, p))
  // A sealed last page, or one whose seal was written but not recorded (the settle died or lost a race).
  if (log.lastSeq > CHUNK_SIZE) found.add(keys.page(jobId, Math.floor((log.lastSeq - 1) / PAGE_SIZE)))
  // A full tail: an append that lost its race may have written its chunk already.
  if (log.tail.length >= CHUNK_SIZE) found.add(keys.chunk(jobId, log.flushedSeq / CHUNK_SIZE))
  return [...found]
}
