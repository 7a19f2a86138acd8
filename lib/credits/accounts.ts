/** Accounts for operators and owners: create, grant, set, and read the balance and ledger. */
import { randomBytes } from 'node:crypto'
import { z } from 'zod'
import type { Clock } from '../core/clock.ts'
import { readEvents } from '../events/log.ts'
import { safePart } from '../storage/keys.ts'
import { type BlobPort, StorageUnavailableError } from '../storage/port.ts'
import { type LedgerEntry, LedgerEntrySchema, applyOnce, ledgerLog, newAccountRecord, readAccount, writeAccount } from './ledger.ts'

export class AccountExistsError extends Error {
  override name = 'AccountExistsError'
}

const operatorOp = (type: string) => `${type}:${randomBytes(9).toString('base64url')}`

export async function createAccount(store: BlobPort, clock: Clock, account: string, credits = 0) {
  safePart(account, 'account')
  if (!Number.isInteger(credits)) throw new Error('credits must be a whole number')
  const op = operatorOp('grant')
  const entries = credits ? [{ type: 'grant' as const, amount: credits, reason: 'opening balance', jobId: null, clientJobId: null, kind: null, op }] : []
  const created = await writeAccount(store, clock, null, newAccountRecord(account, clock.now()), entries)
  if (created) return created.record
  // "Not written" may hide our own landed write: recognise it by its opening entry.
  const existing = await readAccount(store, account)
  const first = existing?.record.ledger.tail[0]
  if (credits && existing && first && LedgerEntrySchema.parse(first).data.op === op) return existing.record
  // Made by its first API key, with no history yet: this is its opening.
  if (existing && existing.record.ledger.lastSeq === 0) {
    if (!credits) return existing.record
    return (await applyOnce(store, clock, account, new Set([op]), () => entries, { current: existing, checkedUpTo: 0 })).account.record
  }
  throw new AccountExistsError(`account "${account}" already exists`)
}

/** At most this many API keys per account, so its record stays small. */
export const MAX_API_KEYS = 50

/**
 * Adds or removes an API key's hash in the account record (created if
 * missing), by conditional writes decided by content: done when the record
 * says so, whoever wrote last.
 */
export async function changeApiKeys(store: BlobPort, clock: Clock, account: string, hash: string, entry: { label: string; createdAt: number } | null) {
  safePart(account, 'account')
  for (let round = 0; round < 20; round++) {
    const current = await readAccount(store, account)
    const has = current?.record.apiKeys[hash] !== undefined
    if (has === (entry !== null)) return
    const base = current?.record ?? newAccountRecord(account, clock.now())
    const apiKeys = { ...base.apiKeys }
    if (entry) apiKeys[hash] = entry
    else delete apiKeys[hash]
    if (Object.keys(apiKeys).length > MAX_API_KEYS) throw new Error(`an account has at most ${MAX_API_KEYS} API keys; revoke one first`)
    await writeAccount(store, clock, current, { ...base, apiKeys }, []).catch((error: unknown) => {
      if (!(error instanceof StorageUnavailableError)) throw error
    })
  }
  throw new StorageUnavailableError(`account ${account} kept changing while its API keys were changed`)
}

/** Adds (or with a negative amount, removes) credits, with a ledger entry. */
export async function grantCredits(store: BlobPort, clock: Clock, account: string, amount: number, reason = 'grant') {
  if (!Number.isInteger(amount)) throw new Error('amount must be a whole number')
  const op = operatorOp('grant')
  const applied = await applyOnce(store, clock, account, new Set([op]), () => [
    { type: 'grant', amount, reason, jobId: null, clientJobId: null, kind: null, op },
  ])
  return applied.account.record
}

/** Sets the balance, recording the difference as an adjustment so the ledger still sums to it. */
export async function setCredits(store: BlobPort, clock: Clock, account: string, balance: number, reason = 'set by operator') {
  if (!Number.isInteger(balance)) throw new Error('balance must be a whole number')
  const op = operatorOp('adjust')
  const applied = await applyOnce(store, clock, account, new Set([op]), (record) => [
    { type: 'adjust', amount: balance - record.balance, reason, jobId: null, clientJobId: null, kind: null, op },
  ])
  return applied.account.record
}

/** The account as its owner sees it: balance and the newest ledger entries. */
/** `GET /api/account`: the balance and the newest ledger entries, newest first. */
export const AccountViewSchema = z.strictObject({
  account: z.string(),
  balance: z.number().int(),
  ledger: z.array(LedgerEntrySchema),
})
export type AccountView = z.infer<typeof AccountViewSchema>

export async function accountView(store: BlobPort, account: string, recent = 20): Promise<AccountView> {
  const stored = await readAccount(store, account)
  if (!stored) return { account, balance: 0, ledger: [] as LedgerEntry[] }
  const { ledger } = stored.record
  const after = Math.max(0, ledger.lastSeq - recent)
  const { events } = await readEvents(store, ledgerLog(account), ledger, after, recent)
  return {
    account,
    balance: stored.record.balance,
    ledger: events.map((event) => LedgerEntrySchema.parse(event)).reverse(),
  }
}

/** Every ledger entry of an account, oldest first (audits and tests). */
export async function readLedger(store: BlobPort, account: string): Promise<LedgerEntry[]> {
  const stored = await readAccount(store, account)
  if (!stored) return []
  const entries: LedgerEntry[] = []
  let after = 0
  while (after < stored.record.ledger.lastSeq) {
    const { events } = await readEvents(store, ledgerLog(account), stored.record.ledger, after, 1000)
    entries.push(...events.map((event) => LedgerEntrySchema.parse(event)))
    after = events.at(-1)?.seq ?? stored.record.ledger.lastSeq
  }
  return entries
}
