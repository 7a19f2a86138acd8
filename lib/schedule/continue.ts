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
import { callUntilClaimed } from './retry.ts'

export async function callNextInvocation(deps: Deps, entry: DueEntry): Promise<DueOutcome> {
  const stored = await readState(deps.store, entry.id)
  // Claimed (and maybe handed over again: that hand-over filed its own entry), finished, or gone.
  if (!stored || !isHandedOver(stored.state)) return { done: true }
  return callUntilClaimed(deps, entry.id, stored.state.handedOverAt ?? 0, 'continue')
}
