/** The credit invariants, checked after every test that touches credits. */
import { expect } from 'vitest'
import { ReservationSchema, readAccount, readLedger } from '../../lib/credits.ts'
import type { BlobPort } from '../../lib/storage/port.ts'

/**
 * - balance = grants + adjustments − charges + refunds (the ledger explains it);
 * - every charge is matched by at most one refund, and nothing is refunded uncharged;
 * - a job is charged at most once; the balance never goes negative;
 * - what each job listed in a reservation has paid, net, is what the
 *   reservation says it paid, and nothing once the reservation's refund is done;
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
      const charged = entryOf('charge', jobId).reduce((sum, e) => sum - e.data.amount, 0)
      const refunded = entryOf('refund', jobId).reduce((sum, e) => sum + e.data.amount, 0)
      // What the job has paid, net: what it is listed as paying, until the reservation's refund is done.
      if (listed.cost > 0) expect(charged - refunded, `net payment of ${jobId}, listed in ${key}`).toBe(reservation.refund?.done ? 0 : listed.paid)
    }
  }
  const record = await store.read(`account/${account}`)
  expect(record?.data.length ?? 0, `bytes of account/${account}`).toBeLessThanOrEqual(16 * 1024)
  return { balance: stored?.record.balance ?? 0, ledger }
}
