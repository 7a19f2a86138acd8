/**
 * Taking a resource over from a job that is gone: a holder whose submit died
 * before writing its job (abandoned), and the old job of a lock taken over,
 * failed so its worker is fenced. Used by submit and by a waiting job's start.
 */
import type { Deps } from '../core/deps.ts'
import { SUBMIT_WRITES_LAND_MS } from '../core/limits.ts'
import { systemError } from '../core/sanitize.ts'
import { isTerminal } from '../core/types.ts'
import { commitState, initialState, readSpec, readState, settleFinishedJob } from './state.ts'

/**
 * A lock whose job was never written may belong to a submit still running: a
 * synchronous function lives up to 60 s on Netlify, and its last write may be
 * in flight after that. Only past this is the holder's submit surely dead (core/limits.ts).
 */
const ORPHAN_LOCK_GRACE_MS = SUBMIT_WRITES_LAND_MS

/**
 * A lock held by a job that was never written (its submit died between the
 * two writes), or, for a lock whose job waits for its account's slot (which
 * never expires), by a job that ended and whose settling did not free it.
 */
export async function isAbandoned(deps: Deps, holder: { jobId: string; acquiredAt: number; waitsForAccount?: true }) {
  if (holder.waitsForAccount) {
    const stored = await readState(deps.store, holder.jobId)
    if (stored && isTerminal(stored.state.status)) return true
  }
  if (holder.acquiredAt + ORPHAN_LOCK_GRACE_MS > deps.clock.now()) return false
  return !(await readSpec(deps.store, holder.jobId)) && !(await readState(deps.store, holder.jobId))
}

/** The old job lost its expired lock: if it never finished, it is failed now, fencing its worker. */
export async function recordTakeover(deps: Deps, oldJobId: string, newJobId: string) {
  for (let round = 0; round < 4; round++) {
    const stored = await readState(deps.store, oldJobId)
    const spec = stored ? null : await readSpec(deps.store, oldJobId)
    if (!stored && !spec) return
    const base = stored?.state ?? initialState(spec!, deps.clock.now())
    if (base.status !== 'queued' && base.status !== 'running' && base.status !== 'retrying') return
    const failure = systemError(
      'lock_expired',
      'The job took longer than its lock allows and was stopped.',
      `lock on ${base.lockKey} expired and was taken over by ${newJobId}`,
    )
    const now = deps.clock.now()
    const done = await commitState(deps, base, stored?.version ?? null, (state) => ({
      state: { ...state, status: 'failed', finishedAt: now, lease: null, ...failure },
      events: [{ type: 'error', data: { error: failure.error } }],
    }))
    if (done) {
      await settleFinishedJob(deps, done)
      return
    }
  }
}
