/**
 * Reservations: jobs that share a client job id pay together.
 *
 * The rule: within an hour of its first charge, a job under a client job id
 * pays what its kind costs above what the reservation already covers (a
 * follow-up of the same price is free; a dearer one pays the difference,
 * and the reservation then covers that price). The reservation's payments
 * are returned together, once, when its last job ends and none of its jobs
 * earned its charge (completed, or was canceled after it started); so a job
 * that ran is never left unpaid by a refund.
 *
 * One small blob per (account, client job id), `reservation/<account>/<sha256>`,
 * changed only by conditional writes and decided by content (is this job
 * listed?), never by who wrote last. A job joins it only after its own
 * charge landed, so every payment listed was made. Past its hour and once
 * no job under it is live, the reaper removes it in two steps, like a lock.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import type { Clock } from '../core/clock.ts'
import { expiryBucket, keys } from '../storage/keys.ts'
import type { BlobPort } from '../storage/port.ts'
import { parseRecord } from '../core/records.ts'

/** Later jobs with the same client job id pay only a difference for this long. */
export const RESERVATION_TTL_MS = 3600_000
/** Jobs one reservation lists at most; more with the same client job id pay on their own. */
export const MAX_JOBS_PER_RESERVATION = 50
/** A reservation marked for removal is deleted at the reaper's next run after this, unless a submit renewed it. */
export const RESERVATION_REAPING_GRACE_MS = 60_000

export const ReservedJobSchema = z.object({
  /** What this job paid into the reservation (0 when covered, or when it ended before it joined). */
  paid: z.number().int().nonnegative(),
  cost: z.number().int().nonnegative(),
  kind: z.string(),
  state: z.enum(['live', 'earned', 'unearned']),
})

export const ReservationSchema = z.object({
  account: z.string(),
  clientJobId: z.string(),
  createdAt: z.number(),
  expiresAt: z.number(),
  /** The highest job cost its payments cover. */
  covered: z.number().int().nonnegative(),
  jobs: z.record(z.string(), ReservedJobSchema),
  /** Set when it ended unearned: its payments are returned by entries after seq `from` (see settle.ts). */
  refund: z.object({ from: z.number().int().nonnegative(), done: z.boolean() }).nullable(),
  /** Set by the reaper before it deletes the blob. */
  reapingSince: z.number().nullable(),
})
export type Reservation = z.infer<typeof ReservationSchema>

export interface StoredReservation {
  reservation: Reservation
  version: string
}

const clientJobIdHash = (clientJobId: string) => createHash('sha256').update(clientJobId).digest('hex')

export const reservationKey = (account: string, clientJobId: string) => keys.reservation(account, clientJobIdHash(clientJobId))

export async function readReservation(store: BlobPort, key: string): Promise<StoredReservation | null> {
  const blob = await store.read(key)
  return blob ? { reservation: parseRecord(key, blob.data, ReservationSchema), version: blob.version } : null
}

export const liveJobs = (r: Reservation) => Object.values(r.jobs).filter((job) => job.state === 'live').length
const earned = (r: Reservation) => Object.values(r.jobs).some((job) => job.state === 'earned')
export const paidIn = (r: Reservation) => Object.values(r.jobs).reduce((sum, job) => sum + job.paid, 0)

/** Over: nothing live under it and nothing left to cover (ended unearned, refund settled, or past its hour). */
export function isOver(r: Reservation, now: number) {
  if (liveJobs(r) > 0) return false
  if (r.refund && !r.refund.done) return false
  return r.refund !== null || r.reapingSince !== null || r.expiresAt <= now || (!earned(r) && Object.keys(r.jobs).length > 0)
}

/** Whether a new job may join it and pay only the difference. */
export const canJoin = (r: Reservation, now: number) =>
  r.refund === null && r.reapingSince === null && r.expiresAt > now && !isOver(r, now) && Object.keys(r.jobs).length < MAX_JOBS_PER_RESERVATION

/** Whether the job ending now leaves the reservation ended unearned with payments to return. */
export const endsUnearned = (r: Reservation) => liveJobs(r) === 0 && !earned(r) && paidIn(r) > 0

export const freshReservation = (account: string, clientJobId: string, now: number): Reservation => ({
  account,
  clientJobId,
  createdAt: now,
  expiresAt: now + RESERVATION_TTL_MS,
  covered: 0,
  jobs: {},
  refund: null,
  reapingSince: null,
})

const markerId = (key: string) => key.slice('reservation/'.length).replace('/', '.')

/** Creates a reservation blob, telling the reaper first when to look at it. */
export async function createReservation(store: BlobPort, key: string, reservation: Reservation) {
  await store.put(keys.expiry(expiryBucket(reservation.expiresAt), 'reservation', markerId(key)), '')
  return store.create(key, JSON.stringify(reservation))
}

/**
 * The reaper's work for one reservation marker, bounded: one read and at
 * most one write. A reservation still in use is looked at again later.
 */
export async function expireReservation(store: BlobPort, clock: Clock, markerName: string): Promise<'deleted' | 'kept'> {
  // The hash has no dots; an account name may.
  const dot = markerName.lastIndexOf('.')
  const key = keys.reservation(markerName.slice(0, dot), markerName.slice(dot + 1))
  const stored = await readReservation(store, key)
  if (!stored) return 'deleted'
  const now = clock.now()
  const { reservation } = stored
  const again = (at: number) => store.put(keys.expiry(expiryBucket(at), 'reservation', markerName), '')
  if (!isOver(reservation, now) || reservation.expiresAt > now) {
    await again(Math.max(reservation.expiresAt, now + 5 * 60_000))
    return 'kept'
  }
  // Two steps, like a lock: a submit that read it before the mark cannot renew it
  // (its write is conditional), and one that read the mark renews it, so the reaper keeps it.
  if (reservation.reapingSince === null || reservation.reapingSince + RESERVATION_REAPING_GRACE_MS > now) {
    if (reservation.reapingSince === null) await store.replace(key, JSON.stringify({ ...reservation, reapingSince: now }), stored.version)
    await again(now) // due at the next run
    return 'kept'
  }
  await store.delete(key)
  return 'deleted'
}
