/**
 * The `retry` entries of the due-time index: a job waiting for its next
 * attempt (see jobs/retry.ts) has its worker called when the attempt is
 * due. The worker's claim decides who runs it, so handling an entry twice
 * is harmless. A call whose delivery was lost is made again: the entry
 * comes back until the attempt was claimed, or the reaper would fail the job.
 */
import type { Deps } from '../core/deps.ts'
import { readState } from '../jobs/state.ts'
import type { DueOutcome } from './dispatcher.ts'
import type { DueEntry } from './due-index.ts'

/** How long a called worker has to claim the attempt before it is called again. */
export const CLAIM_GRACE_MS = 2 * 60_000
/** A failed call is made again this much later. */
const CALL_FAILED_DELAY_MS = 60_000

export async function startNextAttempt(deps: Deps, entry: DueEntry): Promise<DueOutcome> {
  const stored = await readState(deps.store, entry.id)
  // Claimed already, canceled, finished, or gone: nothing to do.
  if (!stored || stored.state.status !== 'retrying') return { done: true }
  const due = stored.state.nextAttemptAt ?? 0
  const now = deps.clock.now()
  if (due > now) return { done: false, at: due }
  return callUntilClaimed(deps, entry.id, due, 'retry')
}

/**
 * Calls a waiting job's worker, then comes back every CLAIM_GRACE_MS until a
 * worker has claimed the job (the caller's check) or the reaper would fail it
 * (`queuedTimeoutMs` after `since`): no point calling again then.
 */
export async function callUntilClaimed(deps: Deps, jobId: string, since: number, what: string): Promise<DueOutcome> {
  const now = deps.clock.now()
  try {
    await deps.invokeWorker(jobId)
  } catch (error) {
    deps.log.error(`${what}: worker call failed; tried again later`, { jobId, error: error instanceof Error ? error.message : String(error) })
    return { done: false, at: now + CALL_FAILED_DELAY_MS }
  }
  const checkAt = now + CLAIM_GRACE_MS
  return checkAt < since + deps.settings.queuedTimeoutMs ? { done: false, at: checkAt } : { done: true }
}
