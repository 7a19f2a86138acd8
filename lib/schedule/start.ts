/**
 * Starting a waiting job when its due entry comes (`start` entries of the
 * due-time index): a delayed job at its time, a queued job whose resource
 * was handed to it, and the guard every waiting job gets at submit (see
 * jobs/submit.ts) so that a submit that died midway leaves nothing behind.
 *
 * A delayed job took no lock at submit: it takes it now. When the resource
 * is busy it waits in the resource's line if it chose to (`onBusy:
 * 'queue'`), else it fails with `resource_locked` and is refunded, as a
 * submit would have been refused with 409. A job in a line waits for the
 * hand-off; its entry comes back when the holder's lock would expire, and a
 * holder that is gone by then has its lock handed to the line's head.
 *
 * The start is create-only: `queue/<job>` is created marked `dispatchedAt`
 * (jobs/launch.ts), and only the handling that created it calls the worker,
 * so an entry handled twice starts the job once; a marked job whose worker
 * never claimed it has its worker called again a minute later (see
 * callAgain), which the worker's claim makes harmless.
 */
import type { Deps } from '../core/deps.ts'
import { systemError } from '../core/sanitize.ts'
import { type JobSpec, isTerminal } from '../core/types.ts'
import { dispatchJob } from '../jobs/dispatch.ts'
import { handOnStale, releaseAndStartNext } from '../jobs/launch.ts'
import { markStarted, readStoredSpec } from '../jobs/records.ts'
import { commitState, initialState, readState, settleFinishedJob } from '../jobs/state.ts'
import { isAbandoned, recordTakeover } from '../jobs/takeover.ts'
import { enterLine } from '../locks/enqueue.ts'
import { giveBackAccountSlot, takeAccountTurn } from '../jobs/account-turn.ts'
import { type LockHolder, acquireLock, holderOf, peekLock } from '../locks/lock.ts'
import { StorageUnavailableError } from '../storage/port.ts'
import { keys } from '../storage/keys.ts'
import type { DueOutcome } from './dispatcher.ts'
import { type DueEntry, dueKey, removeDue } from './due-index.ts'
import { waitingGuardAt } from './delay.ts'
import { SUBMIT_WRITES_LAND_MS } from '../core/limits.ts'

const DONE: DueOutcome = { done: true }
const MAX_ROUNDS = 4
/** A handling is over by then: a scheduled function is stopped at 30 s. */
const HANDLING_OVER_MS = 60_000

export async function startDelayedJob(deps: Deps, entry: DueEntry): Promise<DueOutcome> {
  const jobId = entry.id
  /** This handling took the job's lock: it frees it if the job turns out not to start. */
  let holding: string | null = null
  const letGo = async () => {
    if (holding) await releaseAndStartNext(deps, holding, jobId)
    return DONE
  }
  for (let round = 0; round < MAX_ROUNDS; round++) {
    // Started: the lock, if we took it, is the job's now.
    const started = await readStoredSpec(deps.store, keys.spec(jobId))
    // (A guard has nothing to do for a started job: the reaper watches it from here.)
    if (started) return entry.type === 'guard' || (await readState(deps.store, jobId)) ? DONE : callAgain(deps, started.spec, started.spec.dispatchedAt ?? started.spec.createdAt)
    const waiting = await readStoredSpec(deps.store, keys.waitingSpec(jobId))
    if (!waiting) {
      // Never written (its submit failed), or ended and cleaned up. One canceled while a start
      // handed it a slot, before that start died, still holds the slot: it goes back now.
      const ended = await readState(deps.store, jobId)
      if (ended?.state.usesAccountSlot && isTerminal(ended.state.status)) await giveBackAccountSlot(deps, ended.state.account, jobId)
      return letGo()
    }
    const { spec } = waiting
    const stored = await readState(deps.store, jobId)
    if (stored) {
      // Ended before it started (canceled): settled again, in case its settler died (the reaper walks only `queue/`).
      if (isTerminal(stored.state.status)) await settleFinishedJob(deps, stored)
      return letGo()
    }
    const now = deps.clock.now()
    const runAtEntry = spec.runAt === undefined ? null : dueKey(spec.runAt, 'start', jobId)
    if (entry.key === runAtEntry) {
      // Its time has come: the guard has nothing left to do.
      if (round === 0) await removeDue(deps.store, { key: dueKey(waitingGuardAt(spec.createdAt), 'guard', jobId) })
    } else if (entry.type === 'guard') {
      const filed = await submitFiled(deps, spec, runAtEntry)
      if (filed === 'unfiled') return failUnfiled(deps, spec)
      if (filed === 'at_its_time') return DONE // its own entry starts it
    }
    if (spec.runAt !== undefined && spec.runAt > now) return { done: false, at: spec.runAt }

    if (spec.lockKey && !holding) {
      const turn = await takeTurn(deps, spec, waiting.version)
      if ('done' in turn) return turn
      if (turn.took) holding = spec.lockKey
    }
    // Its account may be at its limit: it waits in the account's line then, keeping the resource
    // it took; a slot handed to it files a new start entry (jobs/account-turn.ts).
    const turn = await takeAccountTurn(deps, spec, waiting.version)
    if (!turn.admitted) {
      // A `start` entry is filed just before a hand-off is written: one handled before the write
      // landed finds the job still waiting. Near the line's head it comes back (the hand-off may
      // land, and its writer die before starting the job); deeper in the line it is spurious.
      return entry.type === 'start' && turn.nearHead ? { done: false, at: now + HANDLING_OVER_MS } : DONE
    }
    const marked = await markStarted(deps, spec, now)
    if (!marked) continue // another handling started it: see it through above
    // A cancel between our read and the mark has made the state: the job must not hold the lock.
    if (await readState(deps.store, jobId)) {
      if (spec.lockKey) await releaseAndStartNext(deps, spec.lockKey, jobId)
      return DONE
    }
    const dispatch = await dispatchJob(deps, marked)
    deps.log.info('waiting job started', { jobId, outcome: dispatch.outcome, lateMs: now - (spec.runAt ?? now) })
    return DONE
  }
  throw new StorageUnavailableError(`job ${jobId}'s spec kept changing; its start is tried again later`)
}

/**
 * Whether the job may start now on its resource: it holds the lock (handed
 * to it, or taken now), or it waits (in the line, or refused and failed).
 */
async function takeTurn(deps: Deps, spec: JobSpec, version: string): Promise<{ took: boolean } | DueOutcome> {
  const lockKey = spec.lockKey!
  const jobId = spec.jobId
  const current = await peekLock(deps.store, lockKey)
  const record = current?.record
  // Handed to it (its hand-off's start died), or taken by an earlier handling that stopped:
  // left as it is (the worker renews it when it claims the job).
  if (record?.state === 'held' && record.jobId === jobId) return { took: false }
  const line = record?.state === 'held' ? record.line : undefined
  if (record?.state === 'held' && line && spec.queueSeq !== undefined && spec.queueSeq >= line.head && spec.queueSeq < line.tail) {
    // Its place in the line stands: wait for the hand-off, unless the holder is gone.
    // The old holder is failed (fencing its worker, should Netlify start it late) even if starting the new one fails.
    const stale = await handOnStale(deps, lockKey, (holder) => isAbandoned(deps, holder), (taken) => recordTakeover(deps, taken.tookOverFrom, taken.handedTo ?? jobId))
    if (stale) return DONE
    // Back when the holder could first be judged abandoned (its submit's writes have landed by
    // then), else when its lock expires (a lock whose job waits for its account does not: one lock
    // TTL from now): never a look every minute per waiting job.
    const abandonable = record.acquiredAt + SUBMIT_WRITES_LAND_MS + 1
    const expires = expiryOf(deps, holderOf(record))
    const next = abandonable > deps.clock.now() ? Math.min(abandonable, expires) : expires
    return { done: false, at: Math.max(next, deps.clock.now() + 1) }
  }
  const options = { canTakeOver: (holder: { jobId: string; acquiredAt: number }) => isAbandoned(deps, holder) }
  const taken =
    spec.onBusy === 'queue'
      ? await enterLine(deps.store, deps.clock, lockKey, jobId, deps.settings.lockTtlMs, options)
      : await acquireLock(deps.store, deps.clock, lockKey, jobId, deps.settings.lockTtlMs, options)
  if (taken.acquired) {
    if (taken.tookOverFrom && taken.tookOverFrom !== jobId) await recordTakeover(deps, taken.tookOverFrom, jobId)
    return { took: true }
  }
  if (taken.holder.jobId === jobId) return { took: false }
  if ('seq' in taken) {
    // In the line now: its place goes on its spec (for its status), and its entry comes back at the holder's expiry.
    await deps.store.replace(keys.waitingSpec(jobId), JSON.stringify({ ...spec, queueSeq: taken.seq }), version)
    return { done: false, at: Math.max(expiryOf(deps, taken.holder), deps.clock.now() + 1) }
  }
  await failBusy(deps, spec, taken.holder.jobId)
  return DONE
}

/** When a holder's lock could expire: one whose job waits for its account keeps it, so one lock TTL from now. */
const expiryOf = (deps: Deps, holder: LockHolder) => (holder.waitsForAccount ? deps.clock.now() + deps.settings.lockTtlMs : holder.expiresAt)

/**
 * Whether the submit of a waiting job finished, asked by the job's guard
 * entry (its submit is over by then): a delayed job's start entry is filed
 * last, a queued job's place in line is recorded last; a job already handed
 * its resource is in line too. A job whose submit stopped before that never
 * reached its client as accepted, and may be unpaid: it is failed, as the
 * reaper fails a started job nobody dispatched.
 */
async function submitFiled(deps: Deps, spec: JobSpec, runAtEntry: string | null): Promise<'filed' | 'at_its_time' | 'unfiled'> {
  if (spec.queueSeq !== undefined || spec.accountSeq !== undefined) return 'filed'
  // Its start entry may have been handled, failed and filed again under another time: the mark says it was filed.
  if (spec.startFiled || (runAtEntry !== null && (await deps.store.read(runAtEntry)))) return 'at_its_time'
  // A job under its account's limit took its resource before its charge, so its lock says nothing;
  // one whose submit died after taking a slot is failed (and its slot freed) like any job whose
  // submit died before starting it.
  if (spec.usesAccountSlot) return 'unfiled'
  if (spec.lockKey) {
    const lock = await peekLock(deps.store, spec.lockKey)
    if (lock?.record.state === 'held' && lock.record.jobId === spec.jobId) return 'filed'
  }
  return 'unfiled'
}

async function failUnfiled(deps: Deps, spec: JobSpec): Promise<DueOutcome> {
  const failure = systemError('worker_never_started', 'The job could not be started.', 'its submit stopped before the job was filed to wait; failed by its guard entry')
  await failWaiting(deps, spec, failure)
  return DONE
}

/**
 * Fails a job that never started (create-only: a cancel or a claim that got there first wins) and
 * settles it. Whoever got there first may have died before settling (a write in flight when its
 * function was stopped lands later): an ended job found here is settled too, since nothing else
 * walks waiting jobs.
 */
async function failWaiting(deps: Deps, spec: JobSpec, failure: ReturnType<typeof systemError>) {
  const now = deps.clock.now()
  const done = await commitState(deps, initialState(spec, now), null, (state) => ({
    state: { ...state, status: 'failed', finishedAt: now, ...failure },
    events: [{ type: 'error', data: { error: failure.error } }],
  }))
  const ended = done ?? (await readState(deps.store, spec.jobId))
  if (ended && isTerminal(ended.state.status)) await settleFinishedJob(deps, ended)
}

/**
 * A job marked started whose worker has not claimed it: the handling that
 * marked it may have died (or failed on storage) before it called the
 * worker. Once that handling is surely over, the worker is called again: its
 * claim makes a second call harmless, and without it the job would wait for
 * the reaper to fail it.
 */
async function callAgain(deps: Deps, spec: JobSpec, dispatchedAt: number): Promise<DueOutcome> {
  const after = dispatchedAt + HANDLING_OVER_MS
  if (deps.clock.now() < after) return { done: false, at: after }
  const dispatch = await dispatchJob(deps, spec)
  deps.log.info('waiting job: worker called again', { jobId: spec.jobId, outcome: dispatch.outcome })
  return DONE
}

/** The resource was held when the job was due: it fails, is refunded and frees nothing it does not hold. */
async function failBusy(deps: Deps, spec: JobSpec, holder: string) {
  const failure = systemError(
    'resource_locked',
    'Another job was working on this resource when the job was due to start.',
    `lock ${spec.lockKey} held by ${holder} at the start time; not started`,
  )
  await failWaiting(deps, spec, failure)
}
