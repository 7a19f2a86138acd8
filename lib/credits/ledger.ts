/**
 * The account record and its ledger. `account/<name>` holds only the balance
 * and where the ledger stands (its newest entries in a short tail; older ones
 * in immutable chunks and pages, like a job's events), so it stays a few KB
 * whatever the account's rate or history.
 *
 * Every balance change is one conditional write of that record whose ledger
 * entries carry an operation id unique to what they do (`charge:<job>`,
 * `refund:<job>`, `grant:<random>`). An ambiguous outcome (an error, or "not
 * written", which the storage may report for a write that landed and was then
 * overwritten) is settled by content: before any retry, the entries added
 * since the seq the attempt was based on are searched for that operation. So
 * an operation is never applied twice and never lost, whoever wrote last.
 */
import { z } from 'zod'
import type { Clock } from '../core/clock.ts'
import { type LogKeys, type NewEvent, chunksFromStorage, emptyLog, planAppend, readEvents } from '../events/log.ts'
import { keys, safePart } from '../storage/keys.ts'
import { type BlobPort, StorageUnavailableError } from '../storage/port.ts'
import { JobEventSchema, type LogPosition, LogPositionSchema } from '../core/types.ts'
import { parseRecord } from '../core/records.ts'

const MAX_ROUNDS = 60

/** Old records also carried reservations; they are dropped on parse (reservations have their own blobs). */
export const AccountRecordSchema = z.object({
  account: z.string(),
  createdAt: z.number(),
  updatedAt: z.number(),
  balance: z.number().int(),
  ledger: LogPositionSchema,
  /**
   * SHA-256 of each API key of the account (never the key): one read both
   * authenticates a caller and gives the balance its charge is decided on.
   * Bounded by MAX_API_KEYS. Defaulted so records written before it parse.
   */
  apiKeys: z.record(z.string(), z.object({ label: z.string(), createdAt: z.number() })).default({}),
  /** Browser tokens carry the generation they were made in; revoking all of them bumps it (tokens/revoke.ts). */
  tokenGeneration: z.number().int().nonnegative().default(0),
  /** Where jobs of this account POST their outcome unless a submit names its own (see webhooks/). */
  webhookUrl: z.string().nullable().default(null),
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
    /** What this entry does, unique per operation: how an ambiguous write is recognised. Absent on old entries. */
    op: z.string().optional(),
  }),
})
export type LedgerEntry = z.infer<typeof LedgerEntrySchema>

/** A ledger entry to append; its balance after is worked out when it is written. */
export type Entry = Omit<LedgerEntry['data'], 'balanceAfter' | 'op'> & { type: LedgerEntry['type']; op: string }

export const chargeOp = (jobId: string) => `charge:${jobId}`
export const refundOp = (jobId: string) => `refund:${jobId}`

export const ledgerLog = (account: string): LogKeys => ({
  chunk: (index) => keys.ledgerChunk(account, index),
  page: (index) => keys.ledgerPage(account, index),
})

export interface StoredAccount {
  record: AccountRecord
  version: string
}

export async function readAccount(store: BlobPort, account: string): Promise<StoredAccount | null> {
  const key = keys.account(safePart(account, 'account'))
  const blob = await store.read(key)
  return blob ? { record: parseRecord(key, blob.data, AccountRecordSchema), version: blob.version } : null
}

export const newAccountRecord = (account: string, now: number): AccountRecord => ({
  account,
  createdAt: now,
  updatedAt: now,
  balance: 0,
  ledger: emptyLog(),
  apiKeys: {},
  tokenGeneration: 0,
  webhookUrl: null,
})

/** One conditional write of the account: the balance and its ledger entries together. */
export async function writeAccount(
  store: BlobPort,
  clock: Clock,
  current: StoredAccount | null,
  base: AccountRecord,
  entries: Entry[],
): Promise<StoredAccount | null> {
  const now = clock.now()
  let balance = base.balance
  const events: NewEvent[] = entries.map(({ type, ...data }) => {
    balance += data.amount
    return { type, data: { ...data, balanceAfter: balance } }
  })
  const where = ledgerLog(base.account)
  // The ledger is an audit trail: never capped.
  const plan = await planAppend(where, base.ledger, events, now, Number.MAX_SAFE_INTEGER, chunksFromStorage(store, where))
  const next: AccountRecord = { ...base, balance, ledger: plan.log, updatedAt: now }
  await Promise.all(plan.writes.map((write) => store.put(write.key, write.data)))
  const data = JSON.stringify(next)
  const key = keys.account(base.account)
  const outcome = current ? await store.replace(key, data, current.version) : await store.create(key, data)
  return outcome.ok ? { record: next, version: outcome.version } : null
}

const SCAN_BATCH = 100

/**
 * The first ledger entry after `after` that `match` accepts, reading forward
 * (tail, then chunks and pages); null at the end, or as soon as `stop` says
 * no later entry can match.
 */
export async function findLedgerEntry(
  store: BlobPort,
  account: string,
  ledger: LogPosition,
  after: number,
  match: (entry: LedgerEntry) => boolean,
  stop: (entry: LedgerEntry) => boolean = () => false,
): Promise<LedgerEntry | null> {
  let from = after
  while (from < ledger.lastSeq) {
    const { events } = await readEvents(store, ledgerLog(account), ledger, from, SCAN_BATCH)
    if (events.length === 0) return null
    for (const event of events) {
      const entry = LedgerEntrySchema.parse(event)
      if (match(entry)) return entry
      if (stop(entry)) return null
    }
    from = events.at(-1)!.seq
  }
  return null
}

export interface Applied {
  /** The entry of this operation now in the ledger (the first, for several). */
  entry: LedgerEntry
  /** True when it was found already there rather than written now. */
  found: boolean
  account: StoredAccount
}

/**
 * Applies an operation once. `entriesFor` builds its entries from the current
 * record (or throws to refuse, e.g. 402); every entry carries an op id from
 * `ops`. `checkedUpTo` is the seq up to which the caller knows none of `ops`
 * is in the ledger; before each attempt the entries since then are searched,
 * so an attempt that landed unseen is found instead of repeated.
 */
export async function applyOnce(
  store: BlobPort,
  clock: Clock,
  account: string,
  ops: ReadonlySet<string>,
  entriesFor: (record: AccountRecord) => Entry[],
  options: { current?: StoredAccount | null; checkedUpTo?: number } = {},
): Promise<Applied> {
  let current = options.current === undefined ? await readAccount(store, account) : options.current
  let checked = options.checkedUpTo ?? current?.record.ledger.lastSeq ?? 0
  let lastError: unknown = null
  for (let round = 0; round < MAX_ROUNDS; round++) {
    if (!current) throw new Error(`no account "${account}"`)
    const { record } = current
    if (record.ledger.lastSeq > checked) {
      const found = await findLedgerEntry(store, account, record.ledger, checked, (entry) => ops.has(entry.data.op ?? ''))
      if (found) return { entry: found, found: true, account: current }
      checked = record.ledger.lastSeq
    }
    const entries = entriesFor(record)
    try {
      const written = await writeAccount(store, clock, current, record, entries)
      if (written) {
        const entry = LedgerEntrySchema.parse(written.record.ledger.tail.find((e) => e.seq === record.ledger.lastSeq + 1))
        return { entry, found: false, account: written }
      }
    } catch (error) {
      if (!(error instanceof StorageUnavailableError)) throw error
      lastError = error
    }
    await clock.sleep(Math.random() * Math.min(200, 5 * 2 ** Math.min(round, 6)))
    current = await readAccount(store, account)
  }
  throw new StorageUnavailableError(`account ${account} kept changing; gave up after ${MAX_ROUNDS} rounds`, { cause: lastError })
}
