/**
 * Continuation: a job that uses steps may run longer than one background
 * invocation (15 minutes). Near `invocationLimitMs`, between two steps, the
 * worker hands the job over:
 *
 *   running (lease L, invocation n) ──hand-over──▶ running (lease null, handedOverAt)
 *        ──next invocation claims──▶ running (lease L', invocation n + 1)
 *
 * The hand-over is one conditional write of the state under the worker's
 * lease; the status stays `running` for clients. Before it, a `continue`
 * entry is filed in the due-time index (the fallback for a worker call that
 * is lost) and the lock is renewed past the window in which the next
 * invocation may come. After it, a fresh worker is called. That worker
 * claims the job by a conditional replace of the handed-over state (like a
 * retry's claim), so a duplicated call finds it claimed and leaves. The job
 * keeps its attempt, charge, lock and log; `invocation` counts up.
 *
 * The reaper counts the hand-over as a heartbeat and waits `queuedTimeoutMs`
 * for the claim (reaper/jobs.ts); a job whose chain died is failed then.
 * Cancel ends a handed-over job directly: no worker is there to ask.
 */
import type { Deps } from '../core/deps.ts'
import { JobFailure } from '../core/errors.ts'
import type { JobSpec } from '../core/types.ts'
import { renewLock } from '../locks/lock.ts'
import { addDue } from '../schedule/due-index.ts'
import { type Change, type StoredState, commitState } from './state.ts'
import { rideOutUnavailable } from '../storage/port.ts'

/** When the dispatcher calls the next invocation if the worker's own call was lost. */
export const CONTINUE_FALLBACK_MS = 60_000

/** A state handed over and not claimed yet. */
export const isHandedOver = (state: { status: string; lease: string | null; handedOverAt?: number | null | undefined }) =>
  state.status === 'running' && state.lease === null && typeof state.handedOverAt === 'number'

/**
 * Hands the job over to a fresh invocation (see the top of this file). Throws
 * LeaseLostError if the job is no longer this worker's, JobFailure if its
 * lock is gone.
 */
export async function handOver(deps: Deps, writer: { update(change: Change): Promise<void> }, spec: JobSpec): Promise<'continued'> {
  const now = deps.clock.now()
  // Filed first: an entry whose job is not handed over is dropped by its handler (schedule/continue.ts).
  await rideOutUnavailable(deps.clock, () => addDue(deps.store, now + CONTINUE_FALLBACK_MS, 'continue', spec.jobId))
  if (spec.lockKey && !(await rideOutUnavailable(deps.clock, () => renewLock(deps.store, deps.clock, spec.lockKey!, spec.jobId, deps.settings.queuedTimeoutMs + deps.settings.lockTtlMs)))) {
    throw new JobFailure('lock_lost', 'The job lost its resource to a newer job.')
  }
  await writer.update((state) => ({ state: { ...state, lease: null, handedOverAt: now }, events: [] }))
  try {
    await deps.invokeWorker(spec.jobId)
  } catch (error) {
    deps.log.error('continuation: worker call failed; the dispatcher calls again', { jobId: spec.jobId, error: error instanceof Error ? error.message : String(error) })
  }
  return 'continued'
}

/**
 * Claims a handed-over job for `lease`: a conditional replace of the state
 * read, so one of several calls wins. Null if it lost the race.
 */
export function claimContinuation(deps: Deps, stored: StoredState, lease: string): Promise<StoredState | null> {
  const now = deps.clock.now()
  const invocation = (stored.state.invocation ?? 1) + 1
  return commitState(deps, stored.state, stored.version, (base) => ({
    state: { ...base, lease, handedOverAt: null, invocation, heartbeatAt: now },
    events: [{ type: 'continued', data: { invocation } }],
  }))
}
