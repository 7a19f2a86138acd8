/**
 * The background worker: claim a job's attempt, run its handler, finish it
 * (or, for a kind with a retry policy, wait for the next attempt: retry.ts).
 *
 * Delivery is at least once (Netlify retries a failed background call twice),
 * so the claim is a conditional write of the job state: one invocation wins,
 * any other finds the state claimed and leaves. Every later write is fenced by
 * the lease token written in the claim: once the reaper (or a cancel) has
 * finished the job, this worker's writes are refused and it stops.
 */
import type { Deps } from '../core/deps.ts'
import type { JobSpec, JobState } from '../core/types.ts'
import { type Change, type StoredState, readState } from './state.ts'
import { readStartedSpec } from './records.ts'
import { randomToken } from '../core/ids.ts'
import { splitError } from '../core/sanitize.ts'
import type { JobKind } from '../kinds/define.ts'
import { saveJobAsset } from '../assets/assets.ts'
import { JobFailure } from '../core/errors.ts'
import { renewLock } from '../locks/lock.ts'
import { resolveRetryPolicy } from '../kinds/retry.ts'
import { claimAttempt, scheduleRetry } from './retry.ts'
import { type FencedWriter, LeaseLostError, fencedWriter } from './fenced-writer.ts'
import { type StepRunner, currentStep, stepKey, stepRunner } from './steps.ts'
import { handOver } from './continuation.ts'

/**
 * Event types a kind may not emit: the job's own, and the stream's frames
 * (`end`, `truncated`), which an `EventSource` listener could not tell apart.
 */
export const RESERVED_EVENT_TYPES = new Set(['started', 'continued', 'step_completed', 'progress', 'cancel_requested', 'asset_created', 'attempt_failed', 'retry_scheduled', 'done', 'error', 'canceled', 'end', 'truncated', 'message'])

export const MAX_PROGRESS_MESSAGE = 200

export type WorkerOutcome =
  | 'complete'
  | 'failed'
  | 'canceled'
  | 'not_found'
  | 'already_claimed'
  /** The attempt failed; the next one waits for the dispatcher (a long wait). */
  | 'retrying'
  /** The job waits for a later attempt that is not due yet (an early, duplicate delivery). */
  | 'not_due'
  /** Another writer (reaper, cancel, takeover) finished the job while it ran. */
  | 'fenced'
  /** The invocation limit came: the job was handed over to a fresh invocation (continuation.ts). */
  | 'continued'

export { LeaseLostError }

/**
 * Runs the job's next attempt, and those after it whose wait is short enough
 * to sleep here (see retry.ts). `invokedAt` is when this invocation started:
 * a wait is slept here only if the next attempt still fits in its 15 minutes.
 */
export async function runJob(deps: Deps, jobId: string, options: { invokedAt?: number } = {}): Promise<WorkerOutcome> {
  const invokedAt = options.invokedAt ?? deps.clock.now()
  let known: Known | undefined
  for (;;) {
    const ran = await runAttempt(deps, jobId, invokedAt, known)
    if (typeof ran === 'string') return ran
    await deps.clock.sleep(ran.waitMs)
    known = ran
  }
}

/** What a wait slept in this invocation knows already: the spec, and the state it wrote. */
interface Known {
  spec: JobSpec
  stored: StoredState
}

async function runAttempt(deps: Deps, jobId: string, invokedAt: number, known?: Known): Promise<WorkerOutcome | (Known & { waitMs: number })> {
  // Only a started job (`queue/`): a call for one that still waits must not run it early.
  const spec = known?.spec ?? (await readStartedSpec(deps.store, jobId))
  if (!spec) return (await readState(deps.store, jobId)) ? 'already_claimed' : 'not_found'
  // The lock's TTL restarts now (never shortened), so it outlives this invocation even when Netlify started it late.
  // After a wait slept here it needs none: the retry renewed it to a TTL past this attempt's due time.
  const holdsLock = !spec.lockKey || known ? true : await renewLock(deps.store, deps.clock, spec.lockKey, jobId, deps.settings.lockTtlMs)

  const kind = deps.kinds.get(spec.kind)
  const policy = resolveRetryPolicy(kind?.retry)
  const lease = randomToken()
  const startedAt = deps.clock.now()
  const claim = await claimAttempt(deps, spec, lease, policy, known?.stored)
  if (!('claimed' in claim)) return claim.outcome

  const writer = fencedWriter(deps, claim.claimed, lease)
  const heartbeat = setInterval(() => {
    writer.checkCancel().catch(() => {})
    if (deps.clock.now() - writer.lastWriteAt() >= deps.settings.heartbeatIntervalMs) {
      writer.update((state) => ({ state: { ...state }, events: [] })).catch(() => {})
    }
  }, Math.max(1000, Math.floor(deps.settings.heartbeatIntervalMs / 3)))
  heartbeat.unref?.()

  // Set for failures no later attempt can mend: a kind this deploy lacks, stored input it cannot parse.
  let final = false
  try {
    if (!kind) {
      final = true
      throw new Error(`job kind "${spec.kind}" is not registered in this deploy`)
    }
    if (!holdsLock) throw new JobFailure('lock_lost', 'The job lost its resource to a newer job before it could start.')
    const input = kind.input.safeParse(spec.input)
    if (!input.success) {
      final = true
      throw input.error
    }
    const steps = stepRunner(deps, spec.jobId, writer, invokedAt)
    let result: unknown
    try {
      result = await runHandler(deps, kind, spec, input.data, writer, steps)
    } catch (thrown) {
      if (!steps.handingOver() || writer.signal.aborted) throw thrown
      return await handOver(deps, writer, spec)
    }
    // Whatever the handler made of the signal (caught it, wrapped it), its steps stopped: the job goes on in the next invocation.
    if (steps.handingOver() && !writer.signal.aborted) return await handOver(deps, writer, spec)
    await writer.finish((state) => ({
      state: { ...state, status: 'complete', result, progress: { message: 'Done', percent: 100 } },
      events: [{ type: 'done', data: { result, creditCharged: state.creditCharged, assets: state.assets } }],
    }))
    return 'complete'
  } catch (thrown) {
    if (thrown instanceof LeaseLostError) return 'fenced'
    const { attempt, maxAttempts } = writer.stored().state
    // Only a job with an attempt left: a kind without a policy fails as it always did.
    const retryable = !final && !(thrown instanceof JobFailure) && attempt < (maxAttempts ?? policy.maxAttempts)
    // A retry must not outlive a cancel: look for its marker once more.
    if (retryable && !writer.signal.aborted) await writer.checkCancel().catch(() => {})
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
    if (retryable) {
      deps.log.error('job attempt failed; retried', { jobId, kind: spec.kind, attempt, error: errorInternal })
      try {
        const plan = await scheduleRetry(deps, writer, spec, policy, thrown, { error, errorInternal }, { invokedAt, attemptStartedAt: startedAt }, await storedStepAssets(deps, writer.stored().state))
        if (plan?.outcome === 'retry_soon') return { waitMs: plan.waitMs, spec, stored: writer.stored() }
        if (plan) return plan.outcome
      } catch (retryError) {
        if (retryError instanceof LeaseLostError) return 'fenced'
        throw retryError
      }
    }
    deps.log.error('job failed', { jobId, kind: spec.kind, attempt, error: errorInternal })
    return finishOrFenced(writer, 'failed', (state) => ({
      state: { ...state, status: 'failed', error, errorInternal },
      events: [{ type: 'error', data: { error } }],
    }))
  } finally {
    clearInterval(heartbeat)
    writer.close()
  }
}

/** Files saved by steps whose results are stored: the next attempt replays those steps and does not save them again. */
async function storedStepAssets(deps: Deps, state: JobState): Promise<Set<string>> {
  const bySteps = Object.entries(state.assetSteps ?? {})
  const stored = await Promise.all(bySteps.map(async ([, name]) => (await deps.store.read(stepKey(state.jobId, name)).catch(() => null)) !== null))
  return new Set(bySteps.filter((_, i) => stored[i]).map(([assetId]) => assetId))
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

async function runHandler(deps: Deps, kind: JobKind, spec: JobSpec, input: unknown, writer: FencedWriter, steps: StepRunner) {
  const { jobId, account } = spec
  const { step } = steps
  // Parallel steps still running end here, whatever the handler did: the hand-over or the next attempt comes after them.
  const result = await kind.run({
    step,
    jobId,
    account,
    input,
    attempt: writer.stored().state.attempt,
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
      const inStep = currentStep()
      return saveJobAsset(deps, spec, file, (asset) =>
        writer.update((state) => ({
          state: { ...state, assets: [...state.assets, asset], ...(inStep ? { assetSteps: { ...state.assetSteps, [asset.assetId]: inStep } } : {}) },
          events: [{ type: 'asset_created', data: { asset } }],
        })),
      )
    },
  }).finally(() => steps.settle())
  writer.signal.throwIfAborted()
  return result ?? null
}
