/**
 * What the reaper does to one job: check a live one (fail it when its worker
 * is gone, settle it when it finished but was not cleaned up), and retire a
 * finished one past retention. Each is safe to repeat after a crash at any
 * point, and throws rather than guess when a record is unreadable.
 */
import type { Deps } from '../core/deps.ts'
import { commitState, deleteJobData, initialState, readSpec, readState, settleFinishedJob } from '../jobs/state.ts'
import { removeReleasedLock } from '../locks/lock.ts'
import { giveBackAccountSlot } from '../jobs/account-turn.ts'
import { forgetIdempotencyRecord } from '../jobs/idempotency.ts'
import { systemError } from '../core/sanitize.ts'
import { isTerminal } from '../core/types.ts'
import { isHandedOver } from '../jobs/continuation.ts'

export type LiveOutcome = 'alive' | 'failed' | 'settled'

export async function reapLiveJob(deps: Deps, jobId: string): Promise<LiveOutcome> {
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
    // A delayed job waits for its time, then for the worker its start called.
    if ((spec.dispatchedAt ?? spec.runAt ?? spec.createdAt) + deps.settings.queuedTimeoutMs > now) return 'alive'
    base = initialState(spec, now)
  } else if (base.status === 'retrying') {
    // Waiting for its next attempt: alive until that attempt should have been claimed.
    if ((base.nextAttemptAt ?? base.updatedAt) + deps.settings.queuedTimeoutMs > now) return 'alive'
  } else if (isHandedOver(base)) {
    // Between two invocations: alive while the next one may still claim it (the call, Netlify's retries, the dispatcher's calls).
    if ((base.handedOverAt ?? base.updatedAt) + deps.settings.queuedTimeoutMs > now) return 'alive'
  } else if ((base.heartbeatAt ?? base.updatedAt) + deps.settings.heartbeatTimeoutMs > now) {
    return 'alive'
  }

  const failure = base.status === 'retrying'
    ? systemError(
        'retry_never_started',
        'The job failed and its next attempt could not be started.',
        `attempt ${base.attempt + 1} due at ${new Date(base.nextAttemptAt ?? base.updatedAt).toISOString()} was never claimed; reaped`,
      )
    : isHandedOver(base)
    ? systemError(
        'continuation_never_started',
        'The job stopped between two of its invocations and was ended.',
        `handed over at ${new Date(base.handedOverAt ?? base.updatedAt).toISOString()} (attempt ${base.attempt}, invocation ${base.invocation ?? 1}) and never claimed; reaped`,
      )
    : stored
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

/**
 * Deletes a finished job past retention with everything it wrote, its
 * long-released lock and its Idempotency-Key record, and then `marker`, the
 * expiry entry that scheduled it. One state read, one parallel wave (lock,
 * record, event blobs derived from the log position, spec, cancel marker),
 * then the state and the marker together: 5 round trips at most, whatever
 * the job's size. Returns the number of locks removed.
 */
export async function retireJob(deps: Deps, jobId: string, marker: string): Promise<number> {
  const stored = await readState(deps.store, jobId)
  const state = stored?.state ?? null
  let locksRemoved = 0
  const removeLock = async (lockKey: string) => {
    if (await removeReleasedLock(deps.store, deps.clock, lockKey, deps.settings.retentionMs / 2)) locksRemoved++
  }
  // A slot its settling could not give back goes now at the latest (a no-op for almost every job).
  if (state?.usesAccountSlot) await giveBackAccountSlot(deps, state.account, jobId)
  await deleteJobData(deps.store, jobId, state, {
    alongside: [
      state?.lockKey ? removeLock(state.lockKey) : null,
      state?.idempotencyRecord ? forgetIdempotencyRecord(deps.store, deps.clock, state.idempotencyRecord, jobId) : null,
    ],
    marker,
  })
  return locksRemoved
}
