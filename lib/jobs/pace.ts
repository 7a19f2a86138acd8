/**
 * How often a watcher (an SSE stream or a long-poll) checks a job's state for
 * new events: fast while events flow, slower when the job is quiet, and never
 * more than a storage-read budget allows.
 *
 * - Right after a check that found events, the next comes after `fastMs`
 *   (events often come in bursts: a kind's own event, then its progress).
 * - Each empty check doubles the pause, up to `activeMaxMs` while the job's
 *   newest event is younger than `idleAfterMs`, and `idleMaxMs` after that.
 * - A token bucket caps the rate whatever the events do: `activePerMinute`
 *   checks a minute (burst `ACTIVE_BURST`) while active, `idlePerMinute`
 *   (burst 1) while idle. A connection starts with an empty bucket; its first
 *   check is the one that opens it.
 *
 * The job's activity comes from its stored newest event, not from the
 * watcher's memory, so a reconnect (a new function invocation) keeps the pace.
 *
 * Bound per watcher-minute: a minute touches at most ⌈60 / limit⌉ + 1
 * connections, each adding its opening check and at most one bucket's burst.
 * With the 25 s stream limit that is 4 connections: active 105 + 4 × 3 = 117
 * ≤ 120, idle 21 + 4 × 2 = 29 ≤ 30.
 */
export interface PaceSettings {
  fastMs: number
  activeMaxMs: number
  idleMaxMs: number
  idleAfterMs: number
  activePerMinute: number
  idlePerMinute: number
}

export const DEFAULT_PACE: PaceSettings = {
  fastMs: 50,
  activeMaxMs: 1000,
  idleMaxMs: 2000,
  idleAfterMs: 10_000,
  activePerMinute: 105,
  idlePerMinute: 21,
}

const ACTIVE_BURST = 2
const IDLE_BURST = 1

export interface CheckResult {
  /** The check found events the watcher had not seen. */
  found: boolean
  /** `ts` of the job's newest event, null before its first. */
  lastEventAt: number | null
}

export interface CheckPacer {
  /** After a check at `now`: how many ms to wait before the next one. */
  next(now: number, result: CheckResult): number
}

export function checkPacer(settings: PaceSettings = DEFAULT_PACE, openedAt: number): CheckPacer {
  let tokens = 0
  let tokensAt = openedAt
  let pause = settings.fastMs
  return {
    next(now, { found, lastEventAt }) {
      const active = lastEventAt !== null && now - lastEventAt < settings.idleAfterMs
      const perMs = (active ? settings.activePerMinute : settings.idlePerMinute) / 60_000
      const burst = active ? ACTIVE_BURST : IDLE_BURST
      tokens = Math.min(burst, tokens + Math.max(0, now - tokensAt) * perMs)
      tokensAt = now
      pause = found ? settings.fastMs : Math.min(pause * 2, active ? settings.activeMaxMs : settings.idleMaxMs)
      // The next check spends one token; wait until it is there.
      const wait = Math.max(pause, Math.ceil((1 - tokens) / perMs))
      tokens = Math.min(burst, tokens + wait * perMs) - 1
      tokensAt = now + wait
      return wait
    },
  }
}
