/**
 * Accounts and credits (see credits/*.ts):
 * - `ledger.ts`: the flat account record and its ledger; every balance change
 *   is one conditional write decided by content;
 * - `accounts.ts`: create, grant, set, and the owner's and auditor's reads;
 * - `reservations.ts`: jobs sharing a client job id pay together;
 * - `charge.ts`: what a submit pays, and the debit after its spec exists;
 * - `settle.ts`: refunds of finished jobs, at most once whoever settles.
 */
export { AccountRecordSchema, type AccountRecord, type LedgerEntry, LedgerEntrySchema, ledgerLog, readAccount } from './credits/ledger.ts'
export { AccountExistsError, accountView, createAccount, grantCredits, readLedger, setCredits } from './credits/accounts.ts'
export {
  RESERVATION_TTL_MS,
  type Reservation,
  ReservationSchema,
  expireReservation,
  readReservation,
  reservationKey,
} from './credits/reservations.ts'
export { type ChargePlan, chargeJob, chargeRefused, insufficientCredits, planCharge } from './credits/charge.ts'
export { CHARGE_WINDOW_MS, earnedCharge, settleJobCredits } from './credits/settle.ts'
