/**
 * What a finished job does to credits. Any number of settlers (the worker,
 * cancel, the reaper) may run this for one job, at once or again later; it
 * refunds at most once because every write is decided by content:
 *
 * - a job under a reservation marks itself ended there; the last one to end,
 *   if none earned, marks the reservation's refund pending (with the ledger
 *   seq it starts from) and then writes one refund entry per payer, after
 *   checking the ledger from that seq for them;
 * - a job on its own that did not earn its charge looks for its charge entry
 *   (after the seq the charge was based on, within the submit's window), marks
 *   its refund pending on its state (with a ledger seq), and writes the refund
 *   after checking the ledger from that seq.
 *
 * Every search is bounded: by the submit's window for a charge, and from a
 * seq recorded just before the refund for a refund. The one exception is a
 * job with a client job id that its reservation does not list because its
 * submit failed before listing it: rare, it searches from its own charge. A
 * job that was listed notes that reservation on its state first
 * (`reservedIn`), so a settling redone after the reservation was removed, or
 * replaced by a newer one under the id, knows its payment went with it.
 */
import type { Clock } from '../core/clock.ts'
import { keys } from '../storage/keys.ts'
import { type BlobPort, StorageUnavailableError } from '../storage/port.ts'
import { type JobState, JobStateSchema } from '../core/types.ts'
import { type LedgerEntry, applyOnce, chargeOp, findLedgerEntry, readAccount, refundOp } from './ledger.ts'
import {
  type Reservation,
  type StoredReservation,
  createReservation,
  endsUnearned,
  freshReservation,
  readReservation,
} from './reservations.ts'
import { SUBMIT_WRITES_LAND_MS } from '../core/limits.ts'

/** A submit's charge lands within this long of its spec (a synchronous function runs 60 s at most). */
export const CHARGE_WINDOW_MS = SUBMIT_WRITES_LAND_MS

/**
 * Earned: the job did its work (completed, or canceled while an attempt ran).
 * Anything else gets its money back, a job canceled while it waited for a
 * retry included (`nextAttemptAt` stays on it): no attempt of it succeeded.
 */
export const earnedCharge = (state: Pick<JobState, 'status' | 'startedAt' | 'nextAttemptAt'>) =>
  state.status === 'complete' || (state.status === 'canceled' && state.startedAt !== null && state.nextAttemptAt == null)

/**
 * Settles a finished job's credits. 'undecided' means a charge that may
 * still land (the submit's window is open): settle again later.
 */
export async function settleJobCredits(store: BlobPort, clock: Clock, state: JobState): Promise<'settled' | 'undecided'> {
  const earned = earnedCharge(state)
  if (state.reservation?.startsWith('reservation/') && state.clientJobId) {
    if (await leaveReservation(store, clock, state, state.reservation, earned)) return 'settled'
  }
  if (earned || state.creditCharged === 0) return 'settled'
  return refundAlone(store, clock, state)
}


/** Marks the job ended in its reservation; false if it was never listed there (its charge is its own). */
async function leaveReservation(store: BlobPort, clock: Clock, state: JobState, key: string, earned: boolean): Promise<boolean> {
  for (let round = 0; round < 20; round++) {
    const stored = await readReservation(store, key)
    const listed = stored?.reservation.jobs[state.jobId]
    // Its payment joined this reservation: said on its state first, in case the reservation is gone by a later settling.
    if (listed && (listed.paid > 0 || listed.cost > 0)) await noteReservedIn(store, state, stored!.reservation.createdAt)
    if (listed && listed.state !== 'live') {
      if (stored.reservation.refund && !stored.reservation.refund.done) await returnPayments(store, clock, key, stored)
      return listed.paid > 0 || listed.cost > 0
    }
    const now = clock.now()
    let next: Reservation
    if (listed) {
      next = { ...stored.reservation, jobs: { ...stored.reservation.jobs, [state.jobId]: { ...listed, state: earned ? 'earned' : 'unearned' } } }
      if (endsUnearned(next)) {
        const account = await readAccount(store, next.account)
        next = { ...next, refund: { from: account?.record.ledger.lastSeq ?? 0, done: false } }
      }
    } else {
      // Listed once, in a reservation since removed (or replaced by a newer one): its payment went with that one.
      if (await wasReserved(store, state)) return true
      // Not listed, and its submit is long over: this is a later generation of the reservation
      // (the one it was in ended and was removed). It is not this job's to join or block.
      if (now > state.createdAt + CHARGE_WINDOW_MS) return false
      // Ended before its submit listed it: this entry keeps a late join out, and pays nothing.
      const base = stored?.reservation ?? freshReservation(state.account, state.clientJobId!, now)
      next = { ...base, jobs: { ...base.jobs, [state.jobId]: { paid: 0, cost: 0, kind: state.kind, state: 'unearned' } } }
    }
    const data = JSON.stringify(next)
    try {
      const outcome = stored ? await store.replace(key, data, stored.version) : await createReservation(store, key, next)
      if (!outcome.ok) continue
    } catch (error) {
      if (error instanceof StorageUnavailableError) continue
      throw error
    }
    if (next.refund && !next.refund.done) {
      const written = await readReservation(store, key)
      if (written) await returnPayments(store, clock, key, written)
    }
    return listed !== undefined
  }
  throw new StorageUnavailableError(`reservation ${key} kept changing`)
}

async function noteReservedIn(store: BlobPort, state: JobState, createdAt: number) {
  if (state.reservedIn === createdAt) return
  const key = keys.state(state.jobId)
  for (let round = 0; round < 5; round++) {
    const blob = await store.read(key)
    if (!blob) return
    const current = JobStateSchema.parse(JSON.parse(blob.data))
    if (current.reservedIn === createdAt) return
    if ((await store.replace(key, JSON.stringify({ ...current, reservedIn: createdAt }), blob.version)).ok) return
  }
  throw new StorageUnavailableError(`job ${state.jobId}'s state kept changing`)
}

/** Whether a settling before this one found the job in a reservation (its state as stored says so). */
async function wasReserved(store: BlobPort, state: JobState) {
  if (state.reservedIn !== undefined) return true
  const blob = await store.read(keys.state(state.jobId))
  return blob !== null && JobStateSchema.parse(JSON.parse(blob.data)).reservedIn !== undefined
}

/** Writes the refunds of a reservation that ended unearned (once, by content), then marks them done. */
async function returnPayments(store: BlobPort, clock: Clock, key: string, stored: StoredReservation) {
  const { reservation } = stored
  const from = reservation.refund?.from ?? 0
  const payers = Object.entries(reservation.jobs).filter(([, job]) => job.paid > 0)
  if (payers.length > 0) {
    await applyOnce(
      store,
      clock,
      reservation.account,
      new Set(payers.map(([jobId]) => refundOp(jobId))),
      () =>
        payers.map(([jobId, job]) => ({
          type: 'refund' as const,
          amount: job.paid,
          reason: 'no job under its client job id earned it',
          jobId,
          clientJobId: reservation.clientJobId,
          kind: job.kind,
          op: refundOp(jobId),
        })),
      { checkedUpTo: from },
    )
  }
  let current: StoredReservation | null = stored
  for (let round = 0; round < 5 && current?.reservation.refund && !current.reservation.refund.done; round++) {
    const done = { ...current.reservation, refund: { ...current.reservation.refund, done: true } }
    if ((await store.replace(key, JSON.stringify(done), current.version)).ok) return
    current = await readReservation(store, key)
  }
  // Refunded but not marked: fail the settle so it runs again (the refunds are found by content)
  // rather than leave a reservation that never ends.
  if (current?.reservation.refund && !current.reservation.refund.done) {
    throw new StorageUnavailableError(`reservation ${key}: refunds written, but kept changing before they could be marked done`)
  }
}

async function refundAlone(store: BlobPort, clock: Clock, state: JobState): Promise<'settled' | 'undecided'> {
  // Jobs charged before charges recorded their basis cannot be searched for; they keep their charge.
  if (state.creditBasis === undefined) return 'settled'
  const current = await readAccount(store, state.account)
  if (!current) return 'settled'
  const deadline = state.createdAt + CHARGE_WINDOW_MS
  const charge = await findLedgerEntry(
    store,
    state.account,
    current.record.ledger,
    state.creditBasis,
    (entry) => isChargeOf(entry, state.jobId),
    (entry) => entry.ts > deadline,
  )
  if (!charge) return clock.now() < deadline ? 'undecided' : 'settled'
  // A job that has a reservation but is not listed there may have been listed in one its
  // client job id has since replaced; that one refunded it, before any mark: search from its charge.
  const from = state.reservation ? charge.seq : await markRefundPending(store, state.jobId, current.record.ledger.lastSeq)
  const op = refundOp(state.jobId)
  await applyOnce(
    store,
    clock,
    state.account,
    new Set([op]),
    () => [{ type: 'refund', amount: -charge.data.amount, reason: `job ${state.status}`, jobId: state.jobId, clientJobId: state.clientJobId, kind: state.kind, op }],
    { current, checkedUpTo: Math.min(from, current.record.ledger.lastSeq) },
  )
  return 'settled'
}

const isChargeOf = (entry: LedgerEntry, jobId: string) => entry.data.op === chargeOp(jobId)

/**
 * Records on the job's state the ledger seq its refund is searched from,
 * before any refund is written; returns the seq recorded (another
 * settler's, if it was first).
 */
async function markRefundPending(store: BlobPort, jobId: string, seq: number): Promise<number> {
  const key = keys.state(jobId)
  for (let round = 0; round < 10; round++) {
    const blob = await store.read(key)
    if (!blob) return seq
    const state = JobStateSchema.parse(JSON.parse(blob.data))
    if (state.refundFrom !== undefined && state.refundFrom !== null) return state.refundFrom
    if ((await store.replace(key, JSON.stringify({ ...state, refundFrom: seq }), blob.version)).ok) return seq
  }
  throw new StorageUnavailableError(`job ${jobId} kept changing while its refund was marked`)
}
