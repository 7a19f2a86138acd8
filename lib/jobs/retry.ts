/**
 * Attempts of one job: the claim of an attempt, and what a failed attempt
 * with attempts left becomes.
 *
 *   running ──attempt fails, attempts left──▶ retrying ──due, claimed──▶ running (attempt + 1)
 *                                                └── cancel ──▶ canceled (refunded)
 *                                                └── never claimed ──▶ failed by the reaper
 *
 * The job keeps its lock, its charge and its log across attempts. The
 * failing worker writes `retrying` in one conditional state write, under its
 * lease, after renewing the lock past the next attempt. A short wait is slept
 * in the same invocation; a longer one is an entry of the due-time index
 * (written first: an entry whose job is not waiting is dropped by its
 * handler, schedule/retry.ts), so no function sleeps for minutes.
 */
import { iso } from '../core/clock.ts'
import type { Deps } from '../core/deps.ts'
import { RetryableError } from '../core/errors.ts'
import type { SplitError } from '../core/sanitize.ts'
import type { JobSpec, JobState } from '../core/types.ts'
import { type ResolvedRetryPolicy, retryWait } from '../kinds/retry.ts'
import { renewLock } from '../locks/lock.ts'
import { addDue } from '../schedule/due-index.ts'
import { rideOutUnavailable } from '../storage/port.ts'
import { claimContinuation, isHandedOver } from './continuation.ts'
import { type StoredState, commitState, initialState, readState, scheduleAssetCheck, settleFinishedJob } from './state.ts'

/** A background function is stopped after 15 minutes. */
export const BACKGROUND_LIMIT_MS = 15 * 60_000
/** Time an in-invocation attempt keeps beyond what the failed one took. */
const INVOCATION_MARGIN_MS = 60_000

export type Claim =
  | { claimed: StoredState }
  /** Another delivery has the attempt, the job is finished, or there is no job. */
  | { outcome: 'already_claimed' }
  /** The job waits for a later attempt: this delivery is early (a duplicate of the last one). */
  | { outcome: 'not_due' }
  /** Cancel was asked for while the job waited: it is canceled now. */
  | { outcome: 'canceled' }

/**
 * Claims the next attempt of a job for `lease`. The first attempt is a
 * create-only write of the state; a later one a replace of the `retrying`
 * state it read, once due. Either way two deliveries cannot both win.
 * `known` is the state the caller just wrote (a wait it slept): it saves the
 * create and the read.
 */
export async function claimAttempt(deps: Deps, spec: JobSpec, lease: string, policy: ResolvedRetryPolicy, known?: StoredState): Promise<Claim> {
  const now = deps.clock.now()
  let stored = known ?? null
  if (!stored) {
    const first = initialState(spec, now)
    const claimed = await landedClaim(deps, spec.jobId, lease, () =>
      commitState(deps, first, null, (state) => ({
        state: { ...state, status: 'running', lease, attempt: 1, invocation: 1, maxAttempts: state.maxAttempts ?? policy.maxAttempts, startedAt: now, heartbeatAt: now },
        events: [{ type: 'started', data: { attempt: 1 } }],
      })),
    )
    if (claimed) return { claimed }
    // Read even for a kind with one attempt: the state may be a continuation's hand-over.
    stored = await readState(deps.store, spec.jobId)
  }
  for (let round = 0; round < 3 && stored; round++) {
    const { state, version } = stored
    // An answer lost after it landed: the job is ours.
    if (state.lease === lease && state.status === 'running') return { claimed: stored }
    if (isHandedOver(state)) {
      // A cancel accepted while the last invocation handed over: no step may run after it.
      if (state.cancelRequested) return (await cancelWaitingJob(deps, stored)) ? { outcome: 'canceled' } : { outcome: 'already_claimed' }
      const claimed = await landedClaim(deps, spec.jobId, lease, () => claimContinuation(deps, stored!, lease))
      if (claimed) return { claimed }
      stored = await readState(deps.store, spec.jobId)
      continue
    }
    if (state.status !== 'retrying') return { outcome: 'already_claimed' }
    if (state.cancelRequested) return (await cancelWaitingJob(deps, stored)) ? { outcome: 'canceled' } : { outcome: 'already_claimed' }
    if ((state.nextAttemptAt ?? 0) > now) return { outcome: 'not_due' }
    const attempt = state.attempt + 1
    const claimed = await landedClaim(deps, spec.jobId, lease, () =>
      commitState(deps, state, version, (base) => ({
        state: { ...base, status: 'running', lease, attempt, invocation: 1, nextAttemptAt: null, heartbeatAt: now, progress: null, error: null, errorInternal: null },
        events: [{ type: 'started', data: { attempt } }],
      })),
    )
    if (claimed) return { claimed }
    stored = await readState(deps.store, spec.jobId)
  }
  return { outcome: 'already_claimed' }
}

/** A claim whose answer was lost is ours if our lease is in the state. */
async function landedClaim(deps: Deps, jobId: string, lease: string, claim: () => Promise<StoredState | null>): Promise<StoredState | null> {
  try {
    return await claim()
  } catch (error) {
    // Ridden out: a job whose claim landed must not be left running with no worker because one read failed.
    const landed = await rideOutUnavailable(deps.clock, () => readState(deps.store, jobId)).catch(() => null)
    if (landed?.state.lease === lease) return landed
    throw error
  }
}

/** The parts of the worker's fenced writer a retry uses. */
export interface AttemptWriter {
  stored(): StoredState
  update(change: (state: JobState) => { state: JobState; events: { type: string; data: unknown }[] }): Promise<void>
}

export type RetryPlan =
  /** The wait is slept in this invocation; then it claims the next attempt. */
  | { outcome: 'retry_soon'; waitMs: number }
  /** A later invocation runs the next attempt, called by the dispatcher. */
  | { outcome: 'retrying' }
  /** Cancel was asked for as the attempt failed: the job is canceled. */
  | { outcome: 'canceled' }

/**
 * Turns a failed attempt into a wait for the next one, or returns null when
 * none is left (or the lock is gone): the caller fails the job.
 */
export async function scheduleRetry(
  deps: Deps,
  writer: AttemptWriter,
  spec: JobSpec,
  policy: ResolvedRetryPolicy,
  thrown: unknown,
  failure: SplitError,
  times: { invokedAt: number; attemptStartedAt: number },
  /** Files saved by steps that are stored: they stay the job's (the next attempt replays those steps). */
  kept: ReadonlySet<string> = new Set(),
): Promise<RetryPlan | null> {
  const { state } = writer.stored()
  const maxAttempts = state.maxAttempts ?? policy.maxAttempts
  if (state.attempt >= maxAttempts) return null
  const now = deps.clock.now()
  const waitMs = retryWait(policy, state.attempt, deps.random ?? Math.random, thrown instanceof RetryableError ? thrown.retryAfterMs : undefined)
  const at = now + waitMs
  // The next attempt should have as long as this one took, inside the same 15 minutes.
  const soon = waitMs <= deps.settings.retrySleepLimitMs && times.invokedAt + BACKGROUND_LIMIT_MS - at >= now - times.attemptStartedAt + INVOCATION_MARGIN_MS

  // Each of these is harmless if the state write below never lands.
  // The failed attempt's files: the next attempt makes its own, and these go once the job ends without them.
  // Those a stored step saved stay: the next attempt replays that step and saves nothing.
  await Promise.all(state.assets.filter((asset) => !kept.has(asset.assetId)).map((asset) => scheduleAssetCheck(deps.store, now, asset.assetId)))
  if (!soon) await addDue(deps.store, at, 'retry', spec.jobId)
  if (spec.lockKey && !(await renewLock(deps.store, deps.clock, spec.lockKey, spec.jobId, at - now + deps.settings.lockTtlMs))) return null

  await writer.update((base) => ({
    state: { ...base, status: 'retrying', lease: null, maxAttempts, nextAttemptAt: at, error: failure.error, errorInternal: failure.errorInternal,
      assets: base.assets.filter((asset) => kept.has(asset.assetId)),
      assetSteps: base.assetSteps && Object.fromEntries(Object.entries(base.assetSteps).filter(([assetId]) => kept.has(assetId))),
    },
    events: [
      { type: 'attempt_failed', data: { attempt: base.attempt, error: failure.error } },
      { type: 'retry_scheduled', data: { attempt: base.attempt + 1, at: iso(at) } },
    ],
  }))
  const written = writer.stored()
  // A cancel that reached the state while this write raced it: the job does not wait any more.
  if (written.state.cancelRequested) return (await cancelWaitingJob(deps, written)) ? { outcome: 'canceled' } : { outcome: 'retrying' }
  return soon ? { outcome: 'retry_soon', waitMs } : { outcome: 'retrying' }
}

/**
 * Cancels a job that waits for its next attempt, or for its next invocation
 * (handed over, continuation.ts): no worker runs it, so the
 * state is written `canceled` directly (conditionally on the version read)
 * and settled: its charge refunded (no attempt succeeded), its lock freed.
 * Null if the state changed meanwhile.
 */
export async function cancelWaitingJob(deps: Deps, stored: StoredState): Promise<StoredState | null> {
  // Only a job that still waits: the state read back after a lost answer may be one a cancel already ended.
  if (stored.state.status !== 'retrying' && !isHandedOver(stored.state)) return null
  const now = deps.clock.now()
  const done = await commitState(deps, stored.state, stored.version, (state) => ({
    state: { ...state, status: 'canceled', cancelRequested: true, finishedAt: now, lease: null },
    events: [{ type: 'canceled', data: { reason: 'canceled by request' } }],
  }))
  if (done) await settleFinishedJob(deps, done)
  return done
}
