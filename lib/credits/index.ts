/**
 * Accounts and credits (see credits/*.ts):
 * - `ledger.ts`: the flat account record and its ledger; every balance change
 *   is one conditional write decided by content;
 * - `accounts.ts`: create, grant, set, and the owner's and auditor's reads;
 * - `reservations.ts`: jobs sharing a client job id pay together;
 * - `charge.ts`: what a submit pays, and the debit after its spec exists;
 * - `settle.ts`: refunds of finished jobs, at most once whoever settles.
 */
export { AccountRecordSchema, type AccountRecord, type LedgerEntry, LedgerEntrySchema, type StoredAccount, ledgerLog, readAccount } from './ledger.ts'
export { AccountExistsError, AccountViewSchema, MAX_API_KEYS, accountView, changeApiKeys, createAccount, grantCredits, readLedger, setCredits } from './accounts.ts'
export {
  RESERVATION_TTL_MS,
  type Reservation,
  ReservationSchema,
  expireReservation,
  readReservation,
  reservationKey,
} from './reservations.ts'
export { type ChargePlan, chargeJob, chargeRefused, insufficientCredits, planCharge } from './charge.ts'
export { CHARGE_WINDOW_MS, earnedCharge, settleJobCredits } from './settle.ts'
