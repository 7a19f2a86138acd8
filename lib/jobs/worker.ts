/**
 * The background worker: claim a queued job, run its handler, finish it.
 *
 * Delivery is at least once (Netlify retries a failed background call twice),
 * so the claim is a create-only write of the job state: one invocation wins,
 * any other finds the state there and leaves. Every later write is fenced by
 * the lease token written in the claim: once the reaper (or a cancel) has
 * finished the job, this worker's writes are refused and it stops.
 */
import type { Deps } from '../core/deps.ts'
import type { JobEvent, JobSpec } from '../core/types.ts'
import { JobStateSchema, type JobState } from '../core/types.ts'
import { type Change, type StoredState, commitState, initialState, readSpec, readState, settleFinishedJob } from './state.ts'
import { CHUNK_SIZE, type ChunkSource, chunksFromStorage, jobLog } from '../events/log.ts'
import { randomToken } from '../core/ids.ts'
import { splitError } from '../core/sanitize.ts'
import { StorageUnavailableError } from '../storage/port.ts'
import { keys } from '../storage/keys.ts'
import type { JobKind } from '../kinds/define.ts'
import { saveJobAsset } from '../assets/assets.ts'
import { JobFailure } from '../core/errors.ts'
import { renewLock } from '../locks/lock.ts'
import { deliverAfterSettle } from '../webhooks/delivery.ts'

/**
 * Event types a kind may not emit: the job's own, and the stream's frames
 * (`end`, `truncated`), which an `EventSource` listener could not tell apart.
 */
export const RESERVED_EVENT_TYPES = new Set(['started', 'progress', 'cancel_requested', 'asset_created', 'done', 'error', 'canceled', 'end', 'truncated', 'message'])

export const MAX_PROGRESS_MESSAGE = 200
/** A worker rides out a storage outage this many times (with backoff) before failing the job. */
const MAX_STORAGE_RETRIES = 5

export type WorkerOutcome =
  | 'complete'
  | 'failed'
  | 'canceled'
  | 'not_found'
  | 'already_claimed'
  /** Another writer (reaper, cancel, takeover) finished the job while it ran. */
  | 'fenced'

/** This worker no longer owns the job; nothing it does may be written. */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError'
}

export async function runJob(deps: Deps, jobId: string): Promise<WorkerOutcome> {
  const spec = await readSpec(deps.store, jobId)
  if (!spec) return (await readState(deps.store, jobId)) ? 'already_claimed' : 'not_found'
  // The lock's TTL restarts now, so it outlives this invocation even when Netlify started it late.
  const holdsLock = spec.lockKey ? await renewLock(deps.store, deps.clock, spec.lockKey, jobId, deps.settings.lockTtlMs) : true

  const lease = randomToken()
  const now = deps.clock.now()
  let claimed: StoredState | null
  try {
    claimed = await commitState(deps, initialState(spec, now), null, (state) => ({
      state: { ...state, status: 'running', lease, attempt: 1, startedAt: now, heartbeatAt: now },
      events: [{ type: 'started', data: { attempt: 1 } }],
    }))
  } catch (error) {
    // The claim's answer was lost: if it landed, the job is ours (our lease is in it).
    const landed = await readState(deps.store, jobId)
    if (landed?.state.lease !== lease) throw error
    claimed = landed
  }
  if (!claimed) return 'already_claimed'

  const kind = deps.kinds.get(spec.kind)
  const writer = fencedWriter(deps, claimed, lease)
  const heartbeat = setInterval(() => {
    writer.checkCancel().catch(() => {})
    if (deps.clock.now() - writer.lastWriteAt() >= deps.settings.heartbeatIntervalMs) {
      writer.update((state) => ({ state: { ...state }, events: [] })).catch(() => {})
    }
  }, Math.max(1000, Math.floor(deps.settings.heartbeatIntervalMs / 3)))
  heartbeat.unref?.()

  try {
    if (!kind) throw new Error(`job kind "${spec.kind}" is not registered in this deploy`)
    if (!holdsLock) throw new JobFailure('lock_lost', 'The job lost its resource to a newer job before it could start.')
    const result = await runHandler(deps, kind, spec, writer)
    await writer.finish((state) => ({
      state: { ...state, status: 'complete', result, progress: { message: 'Done', percent: 100 } },
      events: [{ type: 'done', data: { result, creditCharged: state.creditCharged, assets: state.assets } }],
    }))
    return 'complete'
  } catch (thrown) {
    if (thrown instanceof LeaseLostError) return 'fenced'
    if (writer.signal.aborted && writer.cancelRequested()) {
      return finishOrFenced(writer, 'canceled', (state) => ({
        state: { ...state, status: 'canceled', cancelRequested: true },
        // The worker saw cancel's marker before cancel's own state write landed: the
        // log still tells the request apart from the outcome.
        events: [
          ...(state.cancelRequested ? [] : [{ type: 'cancel_requested', data: null }]),
          { type: 'canceled', data: { reason: 'canceled by request' } },
        ],
      }))
    }
    const { error, errorInternal } = splitError(thrown)
    deps.log.error('job failed', { jobId, kind: spec.kind, error: errorInternal })
    return finishOrFenced(writer, 'failed', (state) => ({
      state: { ...state, status: 'failed', error, errorInternal },
      events: [{ type: 'error', data: { error } }],
    }))
  } finally {
    clearInterval(heartbeat)
    writer.close()
  }
}

async function finishOrFenced(writer: FencedWriter, outcome: WorkerOutcome, change: Change): Promise<WorkerOutcome> {
  try {
    await writer.finish(change)
    return outcome
  } catch (error) {
    if (error instanceof LeaseLostError) return 'fenced'
    throw error
  }
}

async function runHandler(deps: Deps, kind: JobKind, spec: JobSpec, writer: FencedWriter) {
  const { jobId, account } = spec
  const input = kind.input.parse(spec.input)
  const result = await kind.run({
    jobId,
    account,
    input,
    signal: writer.signal,
    progress: (message, percent) =>
      writer.update((state) => {
        const text = String(message).slice(0, MAX_PROGRESS_MESSAGE)
        // One decimal, here where it is produced, so the status and the event agree.
        const pct = percent === undefined || !Number.isFinite(percent) ? null : Math.round(Math.min(100, Math.max(0, percent)) * 10) / 10
        return {
          state: { ...state, progress: { message: text, percent: pct } },
          events: [{ type: 'progress', data: { message: text, percent: pct } }],
        }
      }),
    emit: (type, data) => {
      if (!/^[a-z][a-z0-9_]{0,39}$/.test(type) || RESERVED_EVENT_TYPES.has(type)) {
        throw new TypeError(`event type "${type}" is reserved or not snake_case`)
      }
      return writer.update((state) => ({ state, events: [{ type, data: data ?? null }] }))
    },
    yield: () => new Promise<void>((resolve) => setImmediate(resolve)),
    // The size cap is checked in here, by the worker, never at submit: only the handler knows the size.
    saveAsset: async (file) => {
      writer.signal.throwIfAborted()
      return saveJobAsset(deps, spec, file, (asset) =>
        writer.update((state) => ({
          state: { ...state, assets: [...state.assets, asset] },
          events: [{ type: 'asset_created', data: { asset } }],
        })),
      )
    },
  })
  writer.signal.throwIfAborted()
  return result ?? null
}

interface FencedWriter {
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
function fencedWriter(deps: Deps, claimed: StoredState, lease: string): FencedWriter {
  let current = claimed
  let lastWrite = deps.clock.now()
  let queue: Promise<void> = Promise.resolve()
  let storageFailures = 0
  let writes = 0
  // Set when cancel's marker is seen: a busy job may never let cancel's own state write through.
  let cancelSeen = false
  const controller = new AbortController()
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
    cancelRequested: () => cancelSeen || current.state.cancelRequested,
    checkCancel,
    lastWriteAt: () => lastWrite,
    update: (change) => enqueue(change, false),
    async finish(change) {
      await enqueue(change, true)
      try {
        await settleFinishedJob(deps, current, chunkSource)
      } catch (error) {
        // The job is finished; its live entry stays, so the reaper completes the clean-up.
        deps.log.error('clean-up after finishing failed; the reaper will redo it', {
          jobId: current.state.jobId,
          error: error instanceof Error ? error.message : String(error),
        })
      }
      // Told at once; the entry the settle filed in the due-time index is the fallback.
      if (current.state.webhookUrl) await deliverAfterSettle(deps, current.state).catch(() => {})
    },
    close: () => {},
  }
}
