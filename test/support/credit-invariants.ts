/** The credit invariants, checked after every test that touches credits. */
import { expect } from 'vitest'
import { ReservationSchema, readAccount, readLedger } from '../../lib/credits.ts'
import type { BlobPort } from '../../lib/storage/port.ts'

/**
 * - balance = grants + adjustments − charges + refunds (the ledger explains it);
 * - every charge is matched by at most one refund, and nothing is refunded uncharged;
 * - a job is charged at most once; the balance never goes negative;
 * - each reservation lists only payments that were charged, with their amounts;
 *   once its refund is done every payer has exactly its payment back, and
 *   before that none has (a listed job is never refunded on its own);
 * - the account record stays small (no history in it).
 */
export async function expectCreditInvariants(store: BlobPort, account: string) {
  const stored = await readAccount(store, account)
  const ledger = await readLedger(store, account)
  const sum = ledger.reduce((total, entry) => total + entry.data.amount, 0)
  expect(stored?.record.balance ?? 0, `balance of ${account} = sum of its ledger`).toBe(sum)
  expect(stored?.record.balance ?? 0).toBeGreaterThanOrEqual(0)
  expect(ledger.map((e) => e.seq)).toEqual(ledger.map((_, i) => i + 1))
  const byJob = new Map<string, { charges: number; refunds: number }>()
  for (const entry of ledger) {
    if (entry.type !== 'charge' && entry.type !== 'refund') continue
    const jobId = entry.data.jobId!
    const tally = byJob.get(jobId) ?? { charges: 0, refunds: 0 }
    if (entry.type === 'charge') tally.charges++
    else tally.refunds++
    byJob.set(jobId, tally)
  }
  for (const [jobId, tally] of byJob) {
    expect(tally.charges, `charges of ${jobId}`).toBeLessThanOrEqual(1)
    expect(tally.refunds, `refunds of ${jobId}`).toBeLessThanOrEqual(tally.charges)
  }
  const entryOf = (type: string, jobId: string) => ledger.filter((e) => e.type === type && e.data.jobId === jobId)
  for (const key of (await store.list(`reservation/${account}/`)).keys) {
    const blob = await store.read(key)
    if (!blob) continue
    const reservation = ReservationSchema.parse(JSON.parse(blob.data))
    for (const [jobId, listed] of Object.entries(reservation.jobs)) {
      if (listed.paid === 0) continue
      expect(entryOf('charge', jobId).map((e) => -e.data.amount), `charge of ${jobId}, listed in ${key}`).toEqual([listed.paid])
      const refunded = entryOf('refund', jobId).map((e) => e.data.amount)
      if (reservation.refund?.done) expect(refunded, `refund of ${jobId}, listed in ${key}`).toEqual([listed.paid])
      if (!reservation.refund) expect(refunded, `refund of ${jobId}, listed in ${key} (not refunded)`).toEqual([])
    }
  }
  const record = await store.read(`account/${account}`)
  expect(record?.data.length ?? 0, `bytes of account/${account}`).toBeLessThanOrEqual(16 * 1024)
  return { balance: stored?.record.balance ?? 0, ledger }
}
