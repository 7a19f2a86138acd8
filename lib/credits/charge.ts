/**
 * Charging a job at submit, in two halves around the spec write:
 * `planCharge` reads and decides (a 402 before anything is written);
 * `chargeJob`, called once the spec exists, debits the account and then
 * lists the job in its reservation. The spec records what the job is to pay
 * and the ledger seq the charge is based on, so whatever happens to the
 * submit, whoever settles the job can tell by content whether the charge
 * landed (see settle.ts): a charge can never be orphaned.
 */
import type { Clock } from '../clock.ts'
import { ApiError } from '../errors.ts'
import type { BlobPort } from '../storage/port.ts'
import { StorageUnavailableError } from '../storage/port.ts'
import { type StoredAccount, applyOnce, chargeOp, readAccount, refundOp } from './ledger.ts'
import {
  type Reservation,
  type StoredReservation,
  canJoin,
  createReservation,
  freshReservation,
  isOver,
  readReservation,
  reservationKey,
} from './reservations.ts'

export interface ChargeRequest {
  account: string
  jobId: string
  kind: string
  cost: number
  clientJobId: string | null
}

export interface ChargePlan extends ChargeRequest {
  /** What this job pays: its cost, or the difference above what its reservation covers. */
  amount: number
  /** The reservation blob it joins, or null. */
  reservation: string | null
  /** The ledger seq the charge is based on: its entry, if it lands, comes after. */
  basis: number
  read: StoredAccount | null
  reserved: StoredReservation | null
}

export const insufficientCredits = (balance: number, cost: number) =>
  new ApiError(402, 'insufficient_credits', `This job costs ${cost} credit${cost === 1 ? '' : 's'}; the balance is ${balance}.`, {
    extra: { balance, cost },
  })

/** Another job under the same client job id changed what the reservation covers meanwhile; nothing is kept. */
export const reservationChanged = () =>
  new ApiError(409, 'client_job_busy', 'Another job with this clientJobId changed its reservation at the same moment. Submit again.', {
    headers: { 'Retry-After': '1' },
  })

/** Decides what the job pays, without writing; 402 if the balance cannot cover it. */
export async function planCharge(store: BlobPort, clock: Clock, request: ChargeRequest): Promise<ChargePlan> {
  const { account, cost, clientJobId } = request
  if (cost === 0) return { ...request, amount: 0, reservation: null, basis: 0, read: null, reserved: null }
  const key = clientJobId ? reservationKey(account, clientJobId) : null
  const reserved = key ? await readReservation(store, key) : null
  const now = clock.now()
  let amount = cost
  let reservation = key
  if (reserved && canJoin(reserved.reservation, now)) amount = Math.max(0, cost - reserved.reservation.covered)
  // In use but closed to newcomers (full, or past its hour with jobs still live): pay alone.
  else if (reserved && !isOver(reserved.reservation, now)) reservation = null
  // A job its reservation covers needs no account read.
  if (amount === 0) return { ...request, amount, reservation, basis: 0, read: null, reserved }
  const read = await readAccount(store, account)
  const balance = read?.record.balance ?? 0
  if (amount > balance) throw insufficientCredits(balance, amount)
  return { ...request, amount, reservation, basis: read?.record.ledger.lastSeq ?? 0, read, reserved }
}

/** Whether a failed `chargeJob` certainly left the account untouched. */
export const chargeRefused = (error: unknown) => error instanceof ApiError && error.status === 402

/**
 * Debits the planned amount (once, decided by content), then lists the job
 * in its reservation; returns what the job paid in the end. Throws 402 if
 * the balance no longer covers it (nothing charged), or 409
 * `client_job_busy` if the reservation changed so that the payment no
 * longer covers the job (the caller fails the job; settling it returns the
 * charge).
 */
export async function chargeJob(store: BlobPort, clock: Clock, plan: ChargePlan): Promise<{ paid: number }> {
  const { account, jobId, kind, clientJobId, amount } = plan
  let chargeSeq = plan.basis
  if (amount > 0) {
    const op = chargeOp(jobId)
    const charged = await applyOnce(
      store,
      clock,
      account,
      new Set([op]),
      (record) => {
        if (record.balance < amount) throw insufficientCredits(record.balance, amount)
        return [{ type: 'charge', amount: -amount, reason: clientJobId ? 'job (client job id)' : 'job', jobId, clientJobId, kind, op }]
      },
      { current: plan.read, checkedUpTo: plan.basis },
    )
    chargeSeq = charged.entry.seq
  }
  if (!plan.reservation) return { paid: amount }
  return { paid: await joinReservation(store, clock, plan, plan.reservation, chargeSeq) }
}

/**
 * Lists the job in its reservation. A job charged in full while another job
 * under the same client job id created the reservation (two submits at once)
 * finds it already covered: its charge is returned before it is listed as
 * having paid nothing, so concurrent submits of one piece of work pay once.
 * Returns what the job paid in the end.
 */
async function joinReservation(store: BlobPort, clock: Clock, plan: ChargePlan, key: string, chargeSeq: number): Promise<number> {
  const { account, jobId, kind, cost } = plan
  let amount = plan.amount
  let stored = plan.reserved
  let lastError: unknown = null
  for (let round = 0; round < 20; round++) {
    const now = clock.now()
    const current = stored?.reservation ?? null
    // Listed already: an earlier attempt landed unseen, or the job ended before it joined.
    if (current?.jobs[jobId]) return current.jobs[jobId].paid
    const listed = () => ({ paid: amount, cost, kind, state: 'live' as const })
    let next: Reservation
    if (current && canJoin(current, now)) {
      const needed = Math.max(0, cost - current.covered)
      if (amount < needed) throw reservationChanged()
      if (needed === 0 && amount > 0) {
        await returnCharge(store, clock, plan, chargeSeq)
        amount = 0
        continue
      }
      next = { ...current, covered: Math.max(current.covered, cost), jobs: { ...current.jobs, [jobId]: listed() } }
    } else if (!current || isOver(current, now)) {
      if (amount < cost) throw reservationChanged()
      next = { ...freshReservation(account, plan.clientJobId!, now), covered: cost, jobs: { [jobId]: listed() } }
    } else {
      throw reservationChanged()
    }
    try {
      const data = JSON.stringify(next)
      const outcome = stored ? await store.replace(key, data, stored.version) : await createReservation(store, key, next)
      if (outcome.ok) return amount
    } catch (error) {
      if (!(error instanceof StorageUnavailableError)) throw error
      lastError = error
    }
    stored = await readReservation(store, key)
  }
  throw new StorageUnavailableError(`reservation ${key} kept changing`, { cause: lastError })
}

/** Returns a job's whole charge (once: a settler of the job searches from the charge too). */
async function returnCharge(store: BlobPort, clock: Clock, plan: ChargePlan, chargeSeq: number) {
  const op = refundOp(plan.jobId)
  await applyOnce(
    store,
    clock,
    plan.account,
    new Set([op]),
    () => [{ type: 'refund', amount: plan.amount, reason: 'covered by its client job id', jobId: plan.jobId, clientJobId: plan.clientJobId, kind: plan.kind, op }],
    { checkedUpTo: chargeSeq },
  )
}
