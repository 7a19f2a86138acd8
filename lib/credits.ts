/**
 * Accounts and credits. An account's balance, its live reservations and the
 * newest entries of its ledger are one record (`account/<name>`), so a charge
 * or refund is a single conditional write: the balance, the reservation and
 * the audit entry change together or not at all. Older ledger entries are
 * flushed to immutable chunks, like a job's events (see events.ts).
 *
 * A reservation is keyed by (account, client job id), or by the job id for a
 * job without one. The first job under a client job id is charged; later jobs
 * with the same id within an hour are free. A refund marks the reservation
 * refunded in the same write that returns the credit, so a second refund of
 * the same reservation finds it done: every error path may refund blindly.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import type { Clock } from './clock.ts'
import { ApiError } from './errors.ts'
import { type LogKeys, type NewEvent, chunksFromStorage, emptyLog, planAppend, readEvents } from './events.ts'
import { expiryBucket, keys, safePart } from './storage/keys.ts'
import { type BlobPort, StorageUnavailableError } from './storage/port.ts'
import { JobEventSchema, LogPositionSchema } from './types.ts'

/** Later jobs with the same client job id are free for this long. */
export const RESERVATION_TTL_MS = 3600_000
const MAX_ROUNDS = 60

export const ReservationSchema = z.object({
  clientJobId: z.string().nullable(),
  jobId: z.string(),
  kind: z.string(),
  amount: z.number().int().nonnegative(),
  chargedAt: z.number(),
  expiresAt: z.number(),
  refundedAt: z.number().nullable(),
})
export type Reservation = z.infer<typeof ReservationSchema>

export const AccountRecordSchema = z.object({
  account: z.string(),
  createdAt: z.number(),
  updatedAt: z.number(),
  balance: z.number().int(),
  reservations: z.record(z.string(), ReservationSchema),
  /** Expiry buckets already scheduled for pruning this account's reservations. */
  pruneBuckets: z.array(z.number()),
  ledger: LogPositionSchema,
})
export type AccountRecord = z.infer<typeof AccountRecordSchema>

export const LedgerEntrySchema = JobEventSchema.extend({
  type: z.enum(['grant', 'adjust', 'charge', 'refund']),
  data: z.object({
    amount: z.number().int(),
    balanceAfter: z.number().int(),
    reason: z.string(),
    jobId: z.string().nullable(),
    clientJobId: z.string().nullable(),
    kind: z.string().nullable(),
  }),
})
export type LedgerEntry = z.infer<typeof LedgerEntrySchema>

export const ledgerLog = (account: string): LogKeys => ({
  chunk: (index) => keys.ledgerChunk(account, index),
  page: (index) => keys.ledgerPage(account, index),
})

export const reservationId = (clientJobId: string | null, jobId: string) =>
  clientJobId ? `c-${createHash('sha256').update(clientJobId).digest('hex').slice(0, 40)}` : `j-${jobId}`

interface StoredAccount {
  record: AccountRecord
  version: string
}

export async function readAccount(store: BlobPort, account: string): Promise<StoredAccount | null> {
  const blob = await store.read(keys.account(safePart(account, 'account')))
  return blob ? { record: AccountRecordSchema.parse(JSON.parse(blob.data)), version: blob.version } : null
}

type Entry = Omit<LedgerEntry['data'], 'balanceAfter'> & { type: LedgerEntry['type'] }

/** One conditional write of the account: the change and its ledger entries together. */
async function commitAccount(
  store: BlobPort,
  clock: Clock,
  current: StoredAccount | null,
  account: string,
  change: (record: AccountRecord) => { record: AccountRecord; entries: Entry[] },
): Promise<StoredAccount | null> {
  const now = clock.now()
  const base: AccountRecord = current?.record ?? {
    account,
    createdAt: now,
    updatedAt: now,
    balance: 0,
    reservations: {},
    pruneBuckets: [],
    ledger: emptyLog(),
  }
  const { record, entries } = change(base)
  let balance = base.balance
  const events: NewEvent[] = entries.map(({ type, ...data }) => {
    balance += data.amount
    return { type, data: { ...data, balanceAfter: balance } }
  })
  const where = ledgerLog(account)
  // The ledger is an audit trail: never capped.
  const plan = await planAppend(where, base.ledger, events, now, Number.MAX_SAFE_INTEGER, chunksFromStorage(store, where))
  const next: AccountRecord = { ...record, balance, ledger: plan.log, updatedAt: now }
  await Promise.all(plan.writes.map((write) => store.put(write.key, write.data)))
  const data = JSON.stringify(next)
  const key = keys.account(account)
  const outcome = current ? await store.replace(key, data, current.version) : await store.create(key, data)
  return outcome.ok ? { record: next, version: outcome.version } : null
}

async function retrying<T>(
  store: BlobPort,
  clock: Clock,
  account: string,
  first: StoredAccount | null | undefined,
  attempt: (current: StoredAccount | null) => Promise<T | null>,
): Promise<T> {
  let current = first === undefined ? await readAccount(store, account) : first
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const result = await attempt(current)
    if (result !== null) return result
    await clock.sleep(Math.random() * Math.min(200, 5 * 2 ** Math.min(round, 6)))
    current = await readAccount(store, account)
  }
  throw new StorageUnavailableError(`account ${account} kept changing; gave up after ${MAX_ROUNDS} rounds`)
}

export async function createAccount(store: BlobPort, clock: Clock, account: string, credits = 0) {
  safePart(account, 'account')
  const created = await commitAccount(store, clock, null, account, (record) => ({
    record,
    entries: credits ? [{ type: 'grant', amount: credits, reason: 'opening balance', jobId: null, clientJobId: null, kind: null }] : [],
  }))
  if (!created) throw new Error(`account "${account}" already exists`)
  return created.record
}

/** Adds (or with a negative amount, removes) credits, with a ledger entry. */
export async function grantCredits(store: BlobPort, clock: Clock, account: string, amount: number, reason = 'grant') {
  if (!Number.isInteger(amount)) throw new Error('amount must be a whole number')
  return retrying(store, clock, account, undefined, async (current) => {
    if (!current) throw new Error(`no account "${account}"`)
    const done = await commitAccount(store, clock, current, account, (record) => ({
      record,
      entries: [{ type: 'grant', amount, reason, jobId: null, clientJobId: null, kind: null }],
    }))
    return done?.record ?? null
  })
}

/** Sets the balance, recording the difference as an adjustment so the ledger still sums to it. */
export async function setCredits(store: BlobPort, clock: Clock, account: string, balance: number, reason = 'set by operator') {
  if (!Number.isInteger(balance)) throw new Error('balance must be a whole number')
  return retrying(store, clock, account, undefined, async (current) => {
    if (!current) throw new Error(`no account "${account}"`)
    const done = await commitAccount(store, clock, current, account, (record) => ({
      record,
      entries: [{ type: 'adjust', amount: balance - record.balance, reason, jobId: null, clientJobId: null, kind: null }],
    }))
    return done?.record ?? null
  })
}

const insufficient = (balance: number, cost: number) =>
  new ApiError(402, 'insufficient_credits', `This job costs ${cost} credit${cost === 1 ? '' : 's'}; the balance is ${balance}.`, {
    extra: { balance, cost },
  })

const activeReservation = (record: AccountRecord | undefined, id: string, now: number) => {
  const found = record?.reservations[id]
  return found && found.refundedAt === null && found.expiresAt > now ? found : null
}

export interface ChargeQuote {
  /** What the job will be charged: 0 when a live reservation covers it. */
  amount: number
  reservation: string
  read: StoredAccount | null
}

/**
 * Decides the charge without writing: a live reservation makes the job free;
 * otherwise the balance must cover the cost (402 if not). The read is reused
 * by `chargeCredits`, so a successful submit costs one read and one write.
 */
export async function quoteCharge(store: BlobPort, clock: Clock, account: string, reservation: string, cost: number): Promise<ChargeQuote> {
  if (cost === 0) return { amount: 0, reservation, read: null }
  const read = await readAccount(store, account)
  if (activeReservation(read?.record, reservation, clock.now())) return { amount: 0, reservation, read }
  const balance = read?.record.balance ?? 0
  if (balance < cost) throw insufficient(balance, cost)
  return { amount: cost, reservation, read }
}

export interface ChargeRequest {
  account: string
  reservation: string
  clientJobId: string | null
  jobId: string
  kind: string
  cost: number
}

/** Reserves the cost, atomically; returns what was charged (0 if a live reservation covers it). */
export async function chargeCredits(
  store: BlobPort,
  clock: Clock,
  request: ChargeRequest,
  quote?: ChargeQuote,
): Promise<number> {
  const { account, reservation, clientJobId, jobId, kind, cost } = request
  if (cost === 0) return 0
  return retrying(store, clock, account, quote?.read, async (current) => {
    const now = clock.now()
    if (activeReservation(current?.record, reservation, now)) return 0
    const balance = current?.record.balance ?? 0
    if (!current || balance < cost) throw insufficient(balance, cost)
    const expiresAt = now + RESERVATION_TTL_MS
    const bucket = expiryBucket(expiresAt)
    const scheduled = current.record.pruneBuckets.includes(bucket)
    // Tell the reaper once per account and bucket, before the write that needs it.
    if (!scheduled) await store.put(keys.expiry(bucket, 'account', account), '')
    const done = await commitAccount(store, clock, current, account, (record) => ({
      record: {
        ...record,
        pruneBuckets: scheduled ? record.pruneBuckets : [...record.pruneBuckets, bucket],
        reservations: {
          ...record.reservations,
          [reservation]: { clientJobId, jobId, kind, amount: cost, chargedAt: now, expiresAt, refundedAt: null },
        },
      },
      entries: [{ type: 'charge', amount: -cost, reason: clientJobId ? 'job (client job id)' : 'job', jobId, clientJobId, kind }],
    }))
    return done ? cost : null
  })
}

export type RefundOutcome = 'refunded' | 'already_refunded' | 'not_charged'

/**
 * Returns a job's reservation, once. Only the job that was charged can
 * refund it, and only while the reservation is not already refunded.
 */
export async function refundCredits(
  store: BlobPort,
  clock: Clock,
  account: string,
  reservation: string,
  jobId: string,
  reason: string,
): Promise<RefundOutcome> {
  return retrying(store, clock, account, undefined, async (current): Promise<RefundOutcome | null> => {
    const held = current?.record.reservations[reservation]
    if (!current || !held || held.jobId !== jobId) return 'not_charged'
    if (held.refundedAt !== null) return 'already_refunded'
    const now = clock.now()
    const done = await commitAccount(store, clock, current, account, (record) => ({
      record: { ...record, reservations: { ...record.reservations, [reservation]: { ...held, refundedAt: now } } },
      entries: [{ type: 'refund', amount: held.amount, reason, jobId, clientJobId: held.clientJobId, kind: held.kind }],
    }))
    return done ? 'refunded' : null
  })
}

/** Drops reservations past their hour (the reaper, per scheduled bucket). */
export async function pruneReservations(
  store: BlobPort,
  clock: Clock,
  account: string,
  bucket: number,
  /** Given, a charge whose job never came to exist (its submit died, or could not refund) is refunded as it is pruned. */
  jobExists?: (jobId: string) => Promise<boolean>,
) {
  return retrying(store, clock, account, undefined, async (current) => {
    if (!current) return 0
    const now = clock.now()
    const kept = Object.entries(current.record.reservations).filter(([, r]) => r.expiresAt > now)
    const pruned = Object.keys(current.record.reservations).length - kept.length
    const lost: Reservation[] = []
    for (const r of Object.values(current.record.reservations)) {
      if (jobExists && r.expiresAt <= now && r.refundedAt === null && !(await jobExists(r.jobId))) lost.push(r)
    }
    const done = await commitAccount(store, clock, current, account, (record) => ({
      record: {
        ...record,
        reservations: Object.fromEntries(kept),
        pruneBuckets: record.pruneBuckets.filter((b) => b > bucket),
      },
      entries: lost.map((r) => ({ type: 'refund' as const, amount: r.amount, reason: 'job was never created', jobId: r.jobId, clientJobId: r.clientJobId, kind: r.kind })),
    }))
    return done ? pruned : null
  })
}

/** The account as its owner sees it: balance and the newest ledger entries. */
export async function accountView(store: BlobPort, account: string, recent = 20) {
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
