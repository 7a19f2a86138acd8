/**
 * The `continue` entries of the due-time index: the fallback for the worker
 * call a hand-over makes (see jobs/continuation.ts). While the job is still
 * handed over, its worker is called again; the claim decides who runs it, so
 * a call too many is harmless. Past `queuedTimeoutMs` from the hand-over the
 * reaper fails the job, so the calls stop there.
 */
import type { Deps } from '../core/deps.ts'
import { isHandedOver } from '../jobs/continuation.ts'
import { readState } from '../jobs/state.ts'
import type { DueOutcome } from './dispatcher.ts'
import type { DueEntry } from './due-index.ts'
import { CLAIM_GRACE_MS } from './retry.ts'

/** A failed call is made again this much later. */
const CALL_FAILED_DELAY_MS = 60_000

export async function callNextInvocation(deps: Deps, entry: DueEntry): Promise<DueOutcome> {
  const stored = await readState(deps.store, entry.id)
  // Claimed (and maybe handed over again: that hand-over filed its own entry), finished, or gone.
  if (!stored || !isHandedOver(stored.state)) return { done: true }
  const since = stored.state.handedOverAt ?? 0
  const now = deps.clock.now()
  try {
    await deps.invokeWorker(entry.id)
  } catch (error) {
    deps.log.error('continue: worker call failed; tried again later', { jobId: entry.id, error: error instanceof Error ? error.message : String(error) })
    return { done: false, at: now + CALL_FAILED_DELAY_MS }
  }
  const checkAt = now + CLAIM_GRACE_MS
  return checkAt < since + deps.settings.queuedTimeoutMs ? { done: false, at: checkAt } : { done: true }
}
