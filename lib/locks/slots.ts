/**
 * An account's limit on running jobs (ACCOUNT_MAX_RUNNING): the blob
 * `slots/<account>` = `{ running, line }` names the jobs that hold one of
 * its slots, and carries the pointers of the account's line (line.ts) of
 * jobs waiting for one. It changes only through conditional writes:
 *
 * - taking a slot adds the job when fewer than `limit` run and nobody waits;
 *   otherwise the job enters the line (one write bumps `tail`, one
 *   create-only write files its entry);
 * - giving one back removes the job and, in the same write, hands the free
 *   slots to the line's first jobs that still wait (at most HAND_ON_AT_ONCE):
 *   a slot freed with jobs waiting never stays free.
 *
 * So the line is never left waiting while nobody runs, and starting the next
 * job reads the entry at the line's head: the same cost with 10 or 10 000
 * waiting. `running` holds at most `limit` jobs (a lowered limit takes
 * effect as running jobs end), never the account's history: about 45 bytes
 * a job, 45 KB at the largest limit.
 */
import { z } from 'zod'
import type { Clock } from '../core/clock.ts'
import { parseRecord } from '../core/records.ts'
import { keys } from '../storage/keys.ts'
import { type BlobPort, StorageUnavailableError } from '../storage/port.ts'
import { type Line, accountLine, emptyLine, forgetLineEntries, nextInLine, waitingInLine, writeLineEntry } from './line.ts'

export const SlotsRecordSchema = z.object({
  running: z.array(z.string()),
  line: z.object({ head: z.number().int().nonnegative(), tail: z.number().int().nonnegative() }).optional(),
})
export type SlotsRecord = z.infer<typeof SlotsRecordSchema>

/** The largest ACCOUNT_MAX_RUNNING: keeps the record a few KB. */
export const MAX_ACCOUNT_RUNNING = 1000
/** Slots one release hands on at most (more are free only when the limit was raised or unset). */
export const HAND_ON_AT_ONCE = 16
/**
 * Every submit and every end of a job of the account writes the one record:
 * under a burst they collide, so a refused write waits a jittered, growing
 * moment before it tries again, as the account's ledger does.
 */
const MAX_ROUNDS = 60
const backOff = (clock: Clock, round: number) => clock.sleep(Math.random() * Math.min(200, 5 * 2 ** Math.min(round, 6)))

export type TakeSlotResult =
  | { taken: true }
  /** Waiting in the account's line at `seq`, with the line as this entry left it. */
  | { taken: false; seq: number; line: Line }

export async function readSlots(store: BlobPort, account: string) {
  const key = keys.accountSlots(account)
  const blob = await store.read(key)
  return blob ? { record: parseRecord(key, blob.data, SlotsRecordSchema), version: blob.version } : null
}

/**
 * Takes a slot for `jobId`, or a place in the account's line. `beforeWaiting`
 * runs before the job enters the line (the job's resource lock is marked
 * then, see lock.ts). A job already running keeps its slot.
 */
export async function takeSlot(
  store: BlobPort,
  clock: Clock,
  account: string,
  jobId: string,
  limit: number,
  beforeWaiting: () => Promise<void> = async () => {},
): Promise<TakeSlotResult> {
  const key = keys.accountSlots(account)
  let marked = false
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const current = await readSlots(store, account)
    const record: SlotsRecord = current?.record ?? { running: [] }
    if (record.running.includes(jobId)) return { taken: true }
    if (record.running.length < limit && waitingInLine(record.line) === 0) {
      const next = JSON.stringify({ ...record, running: [...record.running, jobId] })
      const written = current ? await store.replace(key, next, current.version) : await store.create(key, next)
      if (written.ok) return { taken: true }
      await backOff(clock, round)
      continue
    }
    if (!marked) {
      await beforeWaiting()
      marked = true
    }
    const line = record.line ?? emptyLine(clock.now())
    const seq = line.tail
    const bumped: SlotsRecord = { ...record, line: { head: line.head, tail: seq + 1 } }
    // The record exists here: nobody waits in the line of an account whose record is absent.
    if (!current || !(await store.replace(key, JSON.stringify(bumped), current.version)).ok) {
      await backOff(clock, round)
      continue
    }
    // False: a hand-off passed this seq before the entry was written (a tombstone is there): take a new place.
    if (await writeLineEntry(store, clock, accountLine(account), seq, jobId)) return { taken: false, seq, line: bumped.line! }
  }
  throw new StorageUnavailableError(`slots of account ${account} kept changing; gave up taking one`)
}

export interface GiveBackOptions {
  /** Called for each job before it is handed a slot, so it is started even if the caller dies right after. */
  beforeHandOff?(jobId: string): Promise<void>
}

/**
 * Gives `jobId`'s slot back (nothing when it holds none) and hands the free
 * slots to the line's first waiting jobs, in one conditional write. Returns
 * the jobs handed a slot: each must be started (jobs/account-turn.ts).
 */
export async function giveBackSlot(
  store: BlobPort,
  clock: Clock,
  account: string,
  jobId: string | null,
  limit: number,
  options: GiveBackOptions = {},
): Promise<string[]> {
  const entries = accountLine(account)
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const current = await readSlots(store, account)
    if (!current) return []
    const { record, version } = current
    const held = jobId !== null && record.running.includes(jobId)
    const running = record.running.filter((id) => id !== jobId)
    const line = record.line
    const handedTo: string[] = []
    const consumed: number[] = []
    let head = line?.head ?? 0
    // A job waits for a slot while its waiting spec exists: one that started without one (the limit
    // was unset) or whose records retention deleted (it ended long before its turn) is passed over.
    const stillWaits = async (id: string) => !running.includes(id) && !handedTo.includes(id) && (await store.read(keys.waitingSpec(id))) !== null
    while (line && head < line.tail && running.length + handedTo.length < limit && handedTo.length < HAND_ON_AT_ONCE) {
      const turn = await nextInLine(store, clock, entries, { head, tail: line.tail }, stillWaits)
      consumed.push(...turn.consumed)
      if (!turn.next) {
        head = line.tail
        break
      }
      await options.beforeHandOff?.(turn.next.jobId)
      handedTo.push(turn.next.jobId)
      head = turn.next.seq + 1
    }
    if (!held && head === (line?.head ?? 0)) return []
    const next: SlotsRecord = { running: [...running, ...handedTo], ...(line ? { line: { head, tail: line.tail } } : {}) }
    if (!(await store.replace(keys.accountSlots(account), JSON.stringify(next), version)).ok) {
      await backOff(clock, round)
      continue
    }
    await forgetLineEntries(store, entries, consumed)
    return handedTo
  }
  throw new StorageUnavailableError(`slots of account ${account} kept changing; gave up giving one back`)
}
