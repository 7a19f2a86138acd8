/**
 * A delayed start asked for at submit: `runAt` (an ISO time) or
 * `delaySeconds`, one or the other, in the future and at most 7 days ahead.
 */
import { z } from 'zod'
import { invalidRequest } from '../core/errors.ts'
import { SUBMIT_WRITES_LAND_MS } from '../core/limits.ts'

/** How far ahead a start may be set: the scheduling horizon of the due-time index. */
export const MAX_DELAY_MS = 7 * 24 * 3600_000

/** The submit body's fields for a delayed start (the range is checked against the clock in `startTimeOf`). */
export const DelayFieldsSchema = {
  /** When to start: an ISO 8601 time with a zone, in the future, at most 7 days ahead. */
  runAt: z.iso.datetime({ offset: true }).optional(),
  /** Or: how many seconds from now to start, 1 to 604800. */
  delaySeconds: z.number().int().min(1).max(MAX_DELAY_MS / 1000).optional(),
}

/** The start time asked for, or null for a job that starts now. Throws a 400 for one that cannot be. */
export function startTimeOf(fields: { runAt?: string | undefined; delaySeconds?: number | undefined }, now: number): number | null {
  const { runAt, delaySeconds } = fields
  if (runAt !== undefined && delaySeconds !== undefined) {
    throw invalidRequest('Give "runAt" or "delaySeconds", not both.', [
      { path: 'runAt', message: 'not with delaySeconds' },
      { path: 'delaySeconds', message: 'not with runAt' },
    ])
  }
  // Whole ms: the clock may give a fraction, and the time is shown and filed as whole ms.
  if (delaySeconds !== undefined) return Math.ceil(now + delaySeconds * 1000)
  if (runAt === undefined) return null
  const at = Date.parse(runAt)
  if (at <= now) throw invalidRequest('"runAt" is in the past.', [{ path: 'runAt', message: 'must be in the future' }])
  if (at > now + MAX_DELAY_MS) throw invalidRequest('"runAt" is more than 7 days ahead.', [{ path: 'runAt', message: 'must be at most 7 days ahead' }])
  return at
}

/**
 * Every waiting job (delayed or queued) gets a `guard` entry at this age,
 * filed before its spec: the reaper walks only started jobs, so this guard
 * is what finds one whose submit died midway. Past the time a dead submit's
 * writes may still land (a write in flight when its function was stopped,
 * SUBMIT_WRITES_LAND_MS), so by then the submit either filed what the job
 * waits on or never will, and a spec that was to land has landed (see
 * schedule/start.ts).
 */
export const WAITING_GUARD_MS = SUBMIT_WRITES_LAND_MS + 60_000
export const waitingGuardAt = (createdAt: number) => createdAt + WAITING_GUARD_MS
