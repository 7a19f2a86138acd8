/**
 * Starting a job that waited, for its start time (schedule/start.ts) or its
 * turn on a busy resource (a hand-off of the lock, locks/line.ts), then on
 * its account (account-turn.ts). A waiting job's spec is at `waiting/<job>`;
 * starting it creates `queue/<job>` (create-only, marked `dispatchedAt`, so
 * one start wins however many try) and then deletes the waiting copy.
 */
import type { Deps } from '../core/deps.ts'
import { isTerminal } from '../core/types.ts'
import { type LockHolder, type ReleaseResult, handOffStale, releaseLock } from '../locks/lock.ts'
import { type DueEntry, addDue, removeDue } from '../schedule/due-index.ts'
import { keys } from '../storage/keys.ts'
import { markStarted, readState, readStoredSpec } from './records.ts'
import { takeAccountTurn } from './account-turn.ts'

type LaunchDeps = Pick<Deps, 'store' | 'clock' | 'settings' | 'invokeWorker' | 'log'>

/**
 * Releases `jobId`'s lock. When that hands it to the next job in the
 * resource's line, that job is started: a due entry `start` is filed for it
 * before the hand-off is written (so a crash after it is picked up by the
 * dispatcher within a minute), then the job is marked started and its worker
 * called, then the entry removed.
 */
export async function releaseAndStartNext(deps: LaunchDeps, resource: string, jobId: string): Promise<ReleaseResult> {
  const handOff = await releaseFiling(deps, resource, jobId)
  await followHandOffs(deps, resource, handOff)
  return handOff.result
}

/**
 * Hands a lock whose holder is gone (expired, or `isGone`) to its line's
 * head and starts that job; null when the holder is alive or nobody waits.
 */
export async function handOnStale(
  deps: LaunchDeps,
  resource: string,
  isGone: (holder: LockHolder) => Promise<boolean>,
  /** Fails the holder it was taken from (jobs/takeover.ts): run even if starting the next job fails. */
  onTakenOver: (stale: { tookOverFrom: string; handedTo: string | null }) => Promise<void>,
) {
  let entry: DueEntry | null = null
  const stale = await handOffStale(deps.store, deps.clock, resource, isGone, {
    ttlMs: deps.settings.lockTtlMs,
    beforeHandOff: async (next) => {
      entry = await addDue(deps.store, deps.clock.now(), 'start', next)
    },
  })
  if (stale) {
    try {
      await followHandOffs(deps, resource, { result: stale.handedTo ? { released: true, handedTo: stale.handedTo } : { released: true }, entry })
    } finally {
      await onTakenOver(stale)
    }
  }
  return stale
}

async function followHandOffs(deps: LaunchDeps, resource: string, first: HandOff) {
  let handOff: HandOff | null = first
  while (handOff?.result.released && handOff.result.handedTo && handOff.entry) {
    handOff = await startHandedOff(deps, resource, handOff.result.handedTo, handOff.entry)
  }
}

interface HandOff {
  result: ReleaseResult
  /** The due entry filed for the job the lock went to. */
  entry: DueEntry | null
}

async function releaseFiling(deps: LaunchDeps, resource: string, jobId: string): Promise<HandOff> {
  let entry: DueEntry | null = null
  const result = await releaseLock(deps.store, deps.clock, resource, jobId, {
    ttlMs: deps.settings.lockTtlMs,
    beforeHandOff: async (next) => {
      entry = await addDue(deps.store, deps.clock.now(), 'start', next)
    },
  })
  return { result, entry }
}

/**
 * Starts the job a lock was handed to. A job that ended before its turn
 * came (canceled meanwhile) passes the lock on: the next hand-off is
 * returned. A failed worker call leaves the due entry in place: the
 * dispatcher calls the worker again (see schedule/start.ts).
 */
export async function startHandedOff(deps: LaunchDeps, resource: string, jobId: string, entry: DueEntry): Promise<HandOff | null> {
  const now = deps.clock.now()
  const waiting = await readStoredSpec(deps.store, keys.waitingSpec(jobId))
  const ended = async () => {
    const stored = await readState(deps.store, jobId)
    return stored !== null && isTerminal(stored.state.status)
  }
  // Its account may be at its limit: then it waits in the account's line, keeping the resource.
  if (waiting?.spec.usesAccountSlot && !(await ended()) && !(await takeAccountTurn(deps, waiting.spec, waiting.version)).admitted) {
    await removeDue(deps.store, entry)
    return null
  }
  const started = waiting ? await markStarted(deps, waiting.spec, now) : null
  if (await ended()) {
    await removeDue(deps.store, entry)
    return releaseFiling(deps, resource, jobId)
  }
  if (!started) return null // another start was first; the due entry sees it through
  try {
    await deps.invokeWorker(jobId)
  } catch (error) {
    deps.log.error('queued job: worker call failed; the dispatcher calls it again', { jobId, error: error instanceof Error ? error.message : String(error) })
    return null
  }
  deps.log.info('queued job started', { jobId, resource })
  await removeDue(deps.store, entry)
  return null
}
