/**
 * Invariant 4 at the end of the quiet phase: what each job paid and was
 * refunded, against its spec, its end and its reservation (see
 * lib/credits/reservations.ts); invariants-money.ts checks the ledger itself.
 */
import { type Reservation, ReservationSchema, earnedCharge, readAccount, readLedger } from '../../lib/credits/index.ts'
import type { BlobPort } from '../../lib/storage/port.ts'
import { type JobSpec, type JobState, isTerminal } from '../../lib/core/types.ts'
import { expectCreditInvariants } from '../support/credit-invariants.ts'
import { type Commit, aliasIds as A } from './sim-store.ts'
import { ACCOUNTS } from './world.ts'

type Expect = (condition: boolean, message: () => string) => void

/** Per account and charged job, how many refunds its ledger must show (checked again after retention). */
export async function checkCredits(
  store: BlobPort,
  history: readonly Commit[],
  jobs: ReadonlyMap<string, { jobId: string; spec: JobSpec | null }>,
  finals: ReadonlyMap<string, JobState>,
  expect: Expect,
): Promise<Map<string, Map<string, number>>> {
  const refundsDue = new Map<string, Map<string, number>>()
  for (const account of ACCOUNTS) {
    const due = new Map<string, number>()
    refundsDue.set(account, due)
    const failure = await expectCreditInvariants(store, account).then(() => null, (error: unknown) => error)
    expect(failure === null, () => `I4 ${account}: ${failure instanceof Error ? failure.message.split('\n')[0] : String(failure)}`)
    const ledger = await readLedger(store, account)
    const tally = (type: string) => {
      const counts = new Map<string, number>()
      for (const entry of ledger) if (entry.type === type && entry.data.jobId) counts.set(entry.data.jobId, (counts.get(entry.data.jobId) ?? 0) + 1)
      return counts
    }
    const charges = tally('charge')
    const refunds = tally('refund')
    // Jobs listed in a reservation pay together (lib/credits/reservations.ts): refunded
    // together iff every job listed ended without earning its charge.
    // Taken from the history (the reaper may have removed a reservation since): for each job,
    // the last version of its reservation that lists it, i.e. its generation's final one.
    const listedIn = new Map<string, Reservation>()
    for (const commit of history) {
      if (!commit.key.startsWith(`reservation/${account}/`) || commit.after === null) continue
      const reservation = ReservationSchema.parse(JSON.parse(commit.after))
      for (const [jobId, listed] of Object.entries(reservation.jobs)) if (listed.paid > 0 || listed.cost > 0) listedIn.set(jobId, reservation)
    }
    for (const job of jobs.values()) {
      if (!job.spec || job.spec.account !== account) continue
      const name = A(job.jobId)
      const charged = charges.get(job.jobId) ?? 0
      // The spec says what the job is to pay; the charge lands after it (or never, if the submit failed first).
      expect(charged <= (job.spec.creditCharged > 0 ? 1 : 0), () => `I4 ${name}: to pay ${job.spec!.creditCharged} but ${charged} charge entries`)
      const final = finals.get(job.jobId)
      if (charged === 0 || !final || !isTerminal(final.status)) continue
      const reservation = listedIn.get(job.jobId)
      let owed: number
      if (reservation && reservation.jobs[job.jobId]!.paid === 0) {
        owed = 1 // charged while another job created its reservation: given back when it joined
      } else if (reservation) {
        const ended = Object.keys(reservation.jobs).every((id) => (finals.get(id) ? isTerminal(finals.get(id)!.status) : true))
        const someoneEarned = Object.keys(reservation.jobs).some((id) => finals.get(id) && earnedCharge(finals.get(id)!))
        owed = ended && !someoneEarned ? 1 : 0
      } else {
        owed = earnedCharge(final) ? 0 : 1
      }
      due.set(job.jobId, owed)
      expect((refunds.get(job.jobId) ?? 0) === owed, () => `I4 ${name}: ${final.status}${final.startedAt === null ? ' before it started' : ''}${reservation ? ' (reservation)' : ''} with ${refunds.get(job.jobId) ?? 0} refunds, ${owed} owed`)
    }
    // A job that earned its charge is paid for: by its own charge, or by its reservation's payments.
    for (const job of jobs.values()) {
      const final = finals.get(job.jobId)
      if (!job.spec || job.spec.account !== account || !final || !earnedCharge(final)) continue
      if (job.spec.creditCharged === 0 && !job.spec.reservation) continue
      const reservation = listedIn.get(job.jobId)
      const payers = reservation ? Object.entries(reservation.jobs).filter(([, listed]) => listed.paid > 0).map(([id]) => id) : [job.jobId]
      const paid = payers.length > 0 && payers.every((id) => charges.get(id) === 1 && !refunds.get(id))
      expect(paid && (!reservation || reservation.covered >= reservation.jobs[job.jobId]!.cost), () => `I4 ${A(job.jobId)}: ${final.status} but unpaid (payers ${payers.map(A).join(' ')})`)
    }
    // Every charge has its job (the spec is written before the charge), so none is orphaned.
    for (const [jobId] of charges) expect(!!jobs.get(jobId)?.spec, () => `I4 ${A(jobId)}: charged but its job was never created`)
    for (const [jobId] of refunds) expect(due.has(jobId), () => `I4 ${A(jobId)}: refunded but never charged, or charged and completed`)
    const stored = await readAccount(store, account)
    expect((stored?.record.balance ?? 0) >= 0, () => `I4 ${account}: negative balance`)
  }

  return refundsDue
}
