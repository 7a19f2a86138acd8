/**
 * Starting the worker of a job submit has just stored. A failed worker call
 * does not prove the worker did not start: its answer may have been lost
 * after the worker claimed the job. So the job is failed with a create-only
 * write of its state, which loses to a claim (and, if it wins, fences a
 * worker that has not claimed yet: it finds the state and leaves). The
 * outcome of that write is the honest answer.
 */
import type { Deps } from './deps.ts'
import { randomToken } from './ids.ts'
import { commitState, initialState, readState, settleFinishedJob } from './job-state.ts'
import { systemError } from './sanitize.ts'
import type { JobSpec, JobState } from './types.ts'

export type Dispatch =
  /** The worker call was accepted. */
  | { outcome: 'started' }
  /** The call failed, but a worker (or a cancel) already had the job: it stands. */
  | { outcome: 'claimed'; state: JobState }
  /** No worker has it, and now none will: the job is failed (and refunded). */
  | { outcome: 'failed' }
  /** The call failed and storage could not say more: the job stays as it is, for the reaper. */
  | { outcome: 'unknown' }

export async function dispatchJob(deps: Deps, spec: JobSpec): Promise<Dispatch> {
  try {
    await deps.invokeWorker(spec.jobId)
    return { outcome: 'started' }
  } catch (error) {
    return failUndispatched(deps, spec, error)
  }
}

export async function failUndispatched(deps: Deps, spec: JobSpec, cause: unknown): Promise<Dispatch> {
  const failure = systemError(
    'worker_unavailable',
    'The job could not be started.',
    `worker invocation failed: ${cause instanceof Error ? cause.message : String(cause)}`,
  )
  const now = deps.clock.now()
  // Recognises this write if it landed though its answer was lost.
  const writeToken = randomToken()
  const done = await commitState(deps, initialState(spec, now), null, (state) => ({
    state: { ...state, status: 'failed', finishedAt: now, writeToken, ...failure },
    events: [{ type: 'error', data: { error: failure.error } }],
  })).catch(() => undefined)
  if (done === null || done === undefined) {
    const stored = await readState(deps.store, spec.jobId).catch(() => null)
    if (!stored) return { outcome: 'unknown' }
    if (stored.state.writeToken !== writeToken) return { outcome: 'claimed', state: stored.state }
    await settleFinishedJob(deps, stored).catch(() => {})
    return { outcome: 'failed' }
  }
  await settleFinishedJob(deps, done).catch(() => {})
  return { outcome: 'failed' }
}
