/**
 * Starting a delayed job when its time comes (the `start` entries of the
 * due-time index). The job took no lock at submit: it takes it now. A busy
 * resource fails the job with `resource_locked` and refunds it, as a submit
 * would have been refused with 409: waiting an unknown time behind another
 * job is what queueing will offer, opt-in. The start is conditional: the spec
 * is marked `dispatchedAt` only if it did not change since it was read, and
 * only the run that marked it calls the worker, so an entry handled twice
 * (a crash before its removal, two dispatcher runs) starts the job once; a
 * marked job whose worker never claimed it has its worker called again a
 * minute later (see callAgain), which the worker's claim makes harmless.
 */
import type { Deps } from '../core/deps.ts'
import { parseRecord } from '../core/records.ts'
import { systemError } from '../core/sanitize.ts'
import { type JobSpec, JobSpecSchema } from '../core/types.ts'
import { dispatchJob } from '../jobs/dispatch.ts'
import { commitState, initialState, readState, settleFinishedJob } from '../jobs/state.ts'
import { isAbandoned, recordTakeover } from '../jobs/submit.ts'
import { acquireLock, releaseLock } from '../locks/lock.ts'
import { StorageUnavailableError } from '../storage/port.ts'
import { keys } from '../storage/keys.ts'
import type { DueOutcome } from './dispatcher.ts'
import type { DueEntry } from './due-index.ts'

const DONE: DueOutcome = { done: true }
const MAX_ROUNDS = 4
/** A handling is over by then: a scheduled function is stopped at 30 s. */
const HANDLING_OVER_MS = 60_000

export async function startDelayedJob(deps: Deps, entry: DueEntry): Promise<DueOutcome> {
  const jobId = entry.id
  const specKey = keys.spec(jobId)
  /** This handling took the job's lock: it frees it if the job turns out not to start. */
  let holding: string | null = null
  const letGo = async () => {
    if (holding) await releaseLock(deps.store, deps.clock, holding, jobId)
    return DONE
  }
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const blob = await deps.store.read(specKey)
    if (!blob) return letGo() // finished (canceled) and cleaned up
    const spec = parseRecord(specKey, blob.data, JobSpecSchema)
    const claimed = await readState(deps.store, jobId)
    // Another handling started it: the lock, if we took it, is the job's now.
    if (spec.dispatchedAt !== undefined) return claimed ? DONE : callAgain(deps, spec, spec.dispatchedAt)
    if (claimed) return letGo() // canceled before its time
    const now = deps.clock.now()
    if (spec.runAt !== undefined && spec.runAt > now) return { done: false, at: spec.runAt }

    if (spec.lockKey && !holding) {
      const lock = await acquireLock(deps.store, deps.clock, spec.lockKey, jobId, deps.settings.lockTtlMs, {
        canTakeOver: (holder) => isAbandoned(deps, holder),
      })
      // Held by this job already: an earlier handling took it and stopped before the start.
      // It is left as it is (the worker renews it when it claims the job).
      if (!lock.acquired && lock.holder.jobId !== jobId) {
        await failBusy(deps, spec, lock.holder.jobId)
        return DONE
      }
      if (lock.acquired) holding = spec.lockKey
      if (lock.acquired && lock.tookOverFrom && lock.tookOverFrom !== jobId) await recordTakeover(deps, lock.tookOverFrom, jobId)
    }
    const started = { ...spec, dispatchedAt: now }
    // Changed meanwhile (a cancel, another handling): read again.
    if (!(await deps.store.replace(specKey, JSON.stringify(started), blob.version)).ok) continue
    // A cancel between our read and the mark has made the state: the job must not hold the lock.
    if (await readState(deps.store, jobId)) {
      if (spec.lockKey) await releaseLock(deps.store, deps.clock, spec.lockKey, jobId)
      return DONE
    }
    const dispatch = await dispatchJob(deps, started)
    deps.log.info('delayed job started', { jobId, outcome: dispatch.outcome, lateMs: now - (spec.runAt ?? now) })
    return DONE
  }
  throw new StorageUnavailableError(`job ${jobId}'s spec kept changing; its start is tried again later`)
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
  deps.log.info('delayed job: worker called again', { jobId: spec.jobId, outcome: dispatch.outcome })
  return DONE
}

/** The resource was held when the job was due: it fails, is refunded and frees nothing it does not hold. */
async function failBusy(deps: Deps, spec: JobSpec, holder: string) {
  const now = deps.clock.now()
  const failure = systemError(
    'resource_locked',
    'Another job was working on this resource when the job was due to start.',
    `lock ${spec.lockKey} held by ${holder} at the start time; not started`,
  )
  const done = await commitState(deps, initialState(spec, now), null, (state) => ({
    state: { ...state, status: 'failed', finishedAt: now, ...failure },
    events: [{ type: 'error', data: { error: failure.error } }],
  }))
  if (done) await settleFinishedJob(deps, done)
}
