/**
 * All writes of one worker's attempt, serialized and fenced by its lease
 * (see worker.ts): each a conditional write of the job state; a conflict
 * re-reads the state, a cancel request aborts the handler, a lease taken by
 * someone else stops everything.
 */
import type { Deps } from '../core/deps.ts'
import type { JobEvent } from '../core/types.ts'
import { JobStateSchema, type JobState } from '../core/types.ts'
import { type Change, type StoredState, commitState, readState, settleFinishedJob } from './state.ts'
import { CHUNK_SIZE, type ChunkSource, chunksFromStorage, jobLog } from '../events/log.ts'
import { randomToken } from '../core/ids.ts'
import { StorageUnavailableError } from '../storage/port.ts'
import { keys } from '../storage/keys.ts'
import type { AttemptWriter } from './retry.ts'
import { deliverAfterSettle } from '../webhooks/delivery.ts'

/** A worker rides out a storage outage this many times (with backoff) before failing the job. */
const MAX_STORAGE_RETRIES = 5

/** This worker no longer owns the job; nothing it does may be written. */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError'
}

export interface FencedWriter extends AttemptWriter {
  signal: AbortSignal
  cancelRequested(): boolean
  /** Looks for cancel's marker; aborts the handler if it is there. */
  checkCancel(): Promise<void>
  lastWriteAt(): number
  update(change: Change): Promise<void>
  finish(change: Change): Promise<void>
  close(): void
}

/**
 * All writes of one worker, serialized, each a conditional write of the job
 * state under this worker's lease. A conflict re-reads the state: a cancel
 * request aborts the handler; a lease taken by someone else stops everything.
 */
export function fencedWriter(deps: Deps, claimed: StoredState, lease: string): FencedWriter {
  let current = claimed
  let lastWrite = deps.clock.now()
  let queue: Promise<void> = Promise.resolve()
  let storageFailures = 0
  let writes = 0
  // Set when cancel's marker is seen: a busy job may never let cancel's own state write through.
  let cancelSeen = false
  const controller = new AbortController()
  // Claimed with cancel's request already in the state: the handler must not start a step.
  if (claimed.state.cancelRequested) controller.abort(new Error('canceled'))
  const checkCancel = async () => {
    if (cancelSeen || controller.signal.aborted) return
    if (await deps.store.read(keys.cancelRequest(claimed.state.jobId))) {
      cancelSeen = true
      controller.abort(new Error('canceled'))
    }
  }
  // Chunks this worker flushed, so a page can be written without reading them back.
  const flushed = new Map<number, JobEvent[]>()
  const fromStorage = chunksFromStorage(deps.store, jobLog(claimed.state.jobId))
  const chunkSource: ChunkSource = async (index) => flushed.get(index) ?? fromStorage(index)

  const remember = (state: JobState) => {
    const { flushedSeq, tail } = state.log
    if (tail.length === CHUNK_SIZE) flushed.set(flushedSeq / CHUNK_SIZE, tail)
    for (const index of flushed.keys()) if (index < flushedSeq / CHUNK_SIZE - 10) flushed.delete(index)
  }
  remember(current.state)

  const write = async (change: Change, terminal: boolean) => {
    for (;;) {
      const { state } = current
      if (state.lease !== lease || state.status !== 'running') {
        controller.abort(new LeaseLostError('job was finished by another writer'))
        throw new LeaseLostError(`lease on ${state.jobId} lost (status ${state.status})`)
      }
      if ((state.cancelRequested || cancelSeen) && !terminal) controller.abort(new Error('canceled'))
      const now = deps.clock.now()
      // A token per attempt tells, after a storage error, whether the write landed anyway.
      const writeToken = randomToken(9)
      let next: StoredState | null
      try {
        next = await commitState(
          deps,
          state,
          current.version,
          (base) => {
            const changed = change(base)
            return {
              ...changed,
              state: {
                ...changed.state,
                cancelRequested: changed.state.cancelRequested || cancelSeen,
                heartbeatAt: now,
                writeToken,
                ...(terminal ? { finishedAt: now } : {}),
              },
            }
          },
          chunkSource,
        )
      } catch (error) {
        if (!(error instanceof StorageUnavailableError) || ++storageFailures > MAX_STORAGE_RETRIES) throw error
        await deps.clock.sleep(Math.min(3000, 100 * 2 ** storageFailures))
        next = null
      }
      if (next) {
        storageFailures = 0
        current = next
        lastWrite = now
        remember(next.state)
        if (++writes % CHUNK_SIZE === 0 && !terminal) await checkCancel().catch(() => {})
        return
      }
      const reread = await readState(deps.store, state.jobId)
      if (!reread) throw new LeaseLostError(`state of ${state.jobId} is gone`)
      current = { state: JobStateSchema.parse(reread.state), version: reread.version }
      if (current.state.writeToken === writeToken) {
        storageFailures = 0
        lastWrite = now
        remember(current.state)
        return
      }
    }
  }

  const enqueue = (change: Change, terminal: boolean) => {
    const run = queue.then(() => write(change, terminal))
    queue = run.catch(() => {})
    return run
  }

  return {
    signal: controller.signal,
    stored: () => current,
    cancelRequested: () => cancelSeen || current.state.cancelRequested,
    checkCancel,
    lastWriteAt: () => lastWrite,
    update: (change) => enqueue(change, false),
    async finish(change) {
      await enqueue(change, true)
      let webhookEntry: string | null = null
      try {
        webhookEntry = (await settleFinishedJob(deps, current, chunkSource)).webhookEntry
      } catch (error) {
        // The job is finished; its live entry stays, so the reaper completes the clean-up.
        deps.log.error('clean-up after finishing failed; the reaper will redo it', {
          jobId: current.state.jobId,
          error: error instanceof Error ? error.message : String(error),
        })
      }
      // Told at once; the entry the settle filed in the due-time index is the fallback.
      if (webhookEntry) await deliverAfterSettle(deps, current.state, webhookEntry).catch(() => {})
    },
    close: () => {},
  }
}
