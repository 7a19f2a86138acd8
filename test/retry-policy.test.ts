/** Retry policies: defaults, checks when a kind is defined, and the waits they give (full jitter, cap, retryAfterMs). */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { defineJob, kindRegistry } from '../lib/kinds/define.ts'
import { InvalidRetryPolicyError, MAX_RETRY_WAIT_MS, NO_RETRY, RETRY_DEFAULTS, resolveRetryPolicy, retryWait } from '../lib/kinds/retry.ts'

const kind = (retry: unknown) => ({ kind: 'k', input: z.strictObject({}), retry: retry as never, run: async () => null })

describe('retry policies', () => {
  it('gives one attempt without a policy, and 4 attempts of 5 s base and 60 s cap to `retry: {}`', () => {
    expect(resolveRetryPolicy(undefined)).toEqual({ ...RETRY_DEFAULTS, maxAttempts: 1 })
    expect(NO_RETRY.maxAttempts).toBe(1)
    expect(resolveRetryPolicy({})).toEqual({ maxAttempts: 4, baseMs: 5_000, capMs: 60_000 })
    expect(resolveRetryPolicy({ maxAttempts: 2, backoff: { baseMs: 90_000 } })).toEqual({ maxAttempts: 2, baseMs: 90_000, capMs: 90_000 })
  })

  it('refuses a policy out of range when the kind is defined or registered, naming the kind and field', () => {
    for (const bad of [{ maxAttempts: 0 }, { maxAttempts: 21 }, { maxAttempts: 1.5 }, { backoff: { baseMs: 10 } }, { backoff: { baseMs: 5000, capMs: 1000 } }, { backoff: { capMs: 2 * MAX_RETRY_WAIT_MS } }, { backoff: null }]) {
      expect(() => defineJob(kind(bad)), JSON.stringify(bad)).toThrow(InvalidRetryPolicyError)
      expect(() => kindRegistry([kind(bad)]), JSON.stringify(bad)).toThrow(/job kind "k": retry\./)
    }
    expect(() => defineJob(kind({ maxAttempts: 20, backoff: { baseMs: 100, capMs: MAX_RETRY_WAIT_MS } }))).not.toThrow()
  })

  it('waits uniformly in [0, min(cap, base·2^(attempt−1))]', () => {
    const policy = resolveRetryPolicy({ maxAttempts: 10, backoff: { baseMs: 1000, capMs: 6000 } })
    expect([1, 2, 3, 4, 5].map((attempt) => retryWait(policy, attempt, () => 0.999_999))).toEqual([999, 1999, 3999, 5999, 5999])
    expect(retryWait(policy, 3, () => 0)).toBe(0)
    expect(retryWait(policy, 3, () => 0.5)).toBe(2000)
  })

  it('takes a handler’s retryAfterMs instead, at most 24 hours, never negative', () => {
    const policy = resolveRetryPolicy({})
    expect(retryWait(policy, 1, () => 0.5, 120_000)).toBe(120_000)
    expect(retryWait(policy, 1, () => 0.5, 10 * 86_400_000)).toBe(MAX_RETRY_WAIT_MS)
    expect(retryWait(policy, 1, () => 0.5, -5)).toBe(0)
    expect(retryWait(policy, 1, () => 0.5, Number.NaN)).toBe(2500)
  })
})
