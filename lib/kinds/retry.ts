/**
 * A kind's retry policy and the waits it gives.
 *
 * Without a policy a job has one attempt: a retry re-runs the whole handler
 * (its events, files and side effects), so declaring `retry` is the kind
 * author's promise that the handler is safe to repeat. `retry: {}` takes the
 * defaults below, the shape of Netlify Async Workloads' retries.
 */

export interface RetryPolicy {
  /** Attempts in all, the first included: 1 to 20 (default 4). */
  maxAttempts?: number
  /** Waits grow as base·2^(attempt−1), capped, with full jitter: uniform in [0, that]. */
  backoff?: {
    /** First wait's upper bound, 100 ms to 1 hour (default 5 s). */
    baseMs?: number
    /** Longest wait, from `baseMs` to 24 hours (default 60 s). */
    capMs?: number
  }
}

export interface ResolvedRetryPolicy {
  maxAttempts: number
  baseMs: number
  capMs: number
}

export const MAX_ATTEMPTS_LIMIT = 20
/** No wait is longer: not a policy's cap, nor a RetryableError's `retryAfterMs`. */
export const MAX_RETRY_WAIT_MS = 24 * 3600_000
const MIN_BASE_MS = 100
const MAX_BASE_MS = 3600_000

export const RETRY_DEFAULTS: ResolvedRetryPolicy = { maxAttempts: 4, baseMs: 5_000, capMs: 60_000 }
export const NO_RETRY: ResolvedRetryPolicy = { ...RETRY_DEFAULTS, maxAttempts: 1 }

/** A kind's retry policy is not one this product can run; thrown when the kind is defined. */
export class InvalidRetryPolicyError extends Error {
  override name = 'InvalidRetryPolicyError'
}

/** The policy with its defaults filled in; one attempt for a kind that declares none. */
export function resolveRetryPolicy(policy: RetryPolicy | undefined): ResolvedRetryPolicy {
  if (policy === undefined) return NO_RETRY
  return {
    maxAttempts: policy.maxAttempts ?? RETRY_DEFAULTS.maxAttempts,
    baseMs: policy.backoff?.baseMs ?? RETRY_DEFAULTS.baseMs,
    capMs: policy.backoff?.capMs ?? Math.max(RETRY_DEFAULTS.capMs, policy.backoff?.baseMs ?? 0),
  }
}

/** Throws `InvalidRetryPolicyError` naming the kind and the field for a policy out of range. */
export function checkRetryPolicy(kind: string, policy: RetryPolicy | undefined) {
  if (policy === undefined) return
  const fail = (what: string) => {
    throw new InvalidRetryPolicyError(`job kind "${kind}": retry.${what}`)
  }
  if (typeof policy !== 'object' || policy === null) fail('must be an object')
  const { maxAttempts, backoff } = policy
  if (maxAttempts !== undefined && !(Number.isInteger(maxAttempts) && maxAttempts >= 1 && maxAttempts <= MAX_ATTEMPTS_LIMIT)) {
    fail(`maxAttempts must be a whole number from 1 to ${MAX_ATTEMPTS_LIMIT}, not ${maxAttempts}`)
  }
  if (backoff === undefined) return
  if (typeof backoff !== 'object' || backoff === null) fail('backoff must be an object')
  const resolved = resolveRetryPolicy(policy)
  if (!(Number.isInteger(resolved.baseMs) && resolved.baseMs >= MIN_BASE_MS && resolved.baseMs <= MAX_BASE_MS)) {
    fail(`backoff.baseMs must be whole ms from ${MIN_BASE_MS} to ${MAX_BASE_MS}, not ${backoff.baseMs}`)
  }
  if (!(Number.isInteger(resolved.capMs) && resolved.capMs >= resolved.baseMs && resolved.capMs <= MAX_RETRY_WAIT_MS)) {
    fail(`backoff.capMs must be whole ms from baseMs (${resolved.baseMs}) to ${MAX_RETRY_WAIT_MS}, not ${backoff.capMs}`)
  }
}

/**
 * The wait before the attempt after `attempt` (from 1): full jitter,
 * uniform in [0, min(cap, base·2^(attempt−1))], or the handler's
 * `retryAfterMs` when it gave one (at most MAX_RETRY_WAIT_MS). Whole ms.
 */
export function retryWait(policy: ResolvedRetryPolicy, attempt: number, random: () => number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs)) return Math.ceil(Math.min(MAX_RETRY_WAIT_MS, Math.max(0, retryAfterMs)))
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt - 1, 40))
  return Math.floor(random() * ceiling)
}
