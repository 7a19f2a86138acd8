/**
 * A job's turn on its account, under ACCOUNT_MAX_RUNNING (locks/slots.ts).
 * A job submitted under the limit starts only with one of its account's
 * slots: at submit, at its start time, or when the resource it waited for
 * is handed to it. Over the limit it waits in the account's line, `queued`
 * with its place, keeping the resource it holds (its lock is marked so it
 * does not expire meanwhile). It keeps its slot across attempts and
 * invocations; settling it gives the slot back, which starts the line's
 * next jobs.
 *
 * The order is always resource, then slot: a job never holds a slot while
 * it waits for a resource, so a busy resource never keeps the account's
 * other work from running, and no two jobs can wait on each other.
 */
import type { Deps } from '../core/deps.ts'
import { type JobSpec, isTerminal } from '../core/types.ts'
import { markWaitsForAccount } from '../locks/lock.ts'
import { HAND_ON_AT_ONCE, giveBackSlot, readSlots, takeSlot } from '../locks/slots.ts'
import { type DueEntry, addDue, removeDue } from '../schedule/due-index.ts'
import { keys } from '../storage/keys.ts'
import { markStarted, readStartedSpec, readState, readStoredSpec } from './records.ts'

type TurnDeps = Pick<Deps, 'store' | 'clock' | 'settings' | 'invokeWorker' | 'log'>

export type AccountTurn =
  | { admitted: true }
  /**
   * Waiting in its account's line at `seq`. `nearHead`: among the first the next give-back hands
   * slots to, so a hand-off being written now may be for it.
   */
  | { admitted: false; seq: number; nearHead: boolean }

/**
 * Whether the job, which holds its resource (or needs none), may start now:
 * it holds a slot (taken now, or handed to it), or it waits in its
 * account's line. A job waiting there already keeps its place; a new place
 * is recorded on its waiting spec (at `version`), for its status and its guard.
 */
export async function takeAccountTurn(deps: TurnDeps, spec: JobSpec, version: string | null): Promise<AccountTurn> {
  const limit = deps.settings.accountMaxRunning
  if (!spec.usesAccountSlot || limit === null) return { admitted: true }
  const { jobId, account } = spec
  if (spec.accountSeq !== undefined) {
    const slots = await readSlots(deps.store, account)
    if (slots?.record.running.includes(jobId)) return { admitted: true }
    const line = slots?.record.line
    if (line && spec.accountSeq >= line.head && spec.accountSeq < line.tail) {
      return { admitted: false, seq: spec.accountSeq, nearHead: spec.accountSeq < line.head + HAND_ON_AT_ONCE }
    }
  }
  const taken = await takeSlot(deps.store, deps.clock, account, jobId, limit, async () => {
    if (spec.lockKey) await markWaitsForAccount(deps.store, spec.lockKey, jobId)
  })
  if (taken.taken) {
    // Ended meanwhile (canceled): its settling may have looked for the slot before it was taken.
    const stored = await readState(deps.store, jobId)
    if (stored && isTerminal(stored.state.status)) await giveBackAccountSlot(deps, account, jobId)
    return { admitted: true }
  }
  if (version !== null) await deps.store.replace(keys.waitingSpec(jobId), JSON.stringify({ ...spec, accountSeq: taken.seq }), version)
  return { admitted: false, seq: taken.seq, nearHead: false }
}

/**
 * Gives a settled job's slot back and starts the jobs the free slots go to.
 * A `start` due entry is filed for each before its slot is handed on, so a
 * crash after it is picked up by the dispatcher within a minute.
 */
export async function giveBackAccountSlot(deps: TurnDeps, account: string, jobId: string) {
  const filed = new Map<string, DueEntry>()
  const handedTo = await giveBackSlot(deps.store, deps.clock, account, jobId, deps.settings.accountMaxRunning ?? Infinity, {
    beforeHandOff: async (next) => void filed.set(next, await addDue(deps.store, deps.clock.now(), 'start', next)),
  })
  for (const next of handedTo) await startAdmitted(deps, account, next, filed.get(next)!)
}

/**
 * Starts a job handed a slot. One that ended before its turn came (canceled
 * meanwhile) gives the slot back at once. A failed worker call leaves the
 * due entry in place: the dispatcher calls the worker again (schedule/start.ts).
 */
async function startAdmitted(deps: TurnDeps, account: string, jobId: string, entry: DueEntry) {
  const waiting = await readStoredSpec(deps.store, keys.waitingSpec(jobId))
  const started = waiting ? await markStarted(deps, waiting.spec, deps.clock.now()) : null
  const stored = await readState(deps.store, jobId)
  // Ended before its turn came (canceled), or gone altogether: the slot goes on at once.
  const gone = !waiting && !stored && !(await readStartedSpec(deps.store, jobId))
  if (gone || (stored && isTerminal(stored.state.status))) {
    await removeDue(deps.store, entry)
    await giveBackAccountSlot(deps, account, jobId)
    return
  }
  if (!started) return // another start was first; the due entry sees it through
  try {
    await deps.invokeWorker(jobId)
  } catch (error) {
    deps.log.error('job over its account limit: worker call failed; the dispatcher calls it again', { jobId, error: error instanceof Error ? error.message : String(error) })
    return
  }
  deps.log.info('job over its account limit started', { jobId, account })
  await removeDue(deps.store, entry)
}
