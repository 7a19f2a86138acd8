/** The credit invariants, checked after every test that touches credits. */
import { expect } from 'vitest'
import { readAccount, readLedger } from '../../lib/credits.ts'
import type { BlobPort } from '../../lib/storage/port.ts'

/**
 * - balance = grants + adjustments − charges + refunds (the ledger explains it);
 * - every charge is matched by at most one refund, and nothing is refunded uncharged;
 * - a job is charged at most once; the balance never goes negative.
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
  return { balance: stored?.record.balance ?? 0, ledger }
}
