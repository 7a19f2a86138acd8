/**
 * A line of waiting jobs. A resource's line holds jobs that chose to wait
 * for the resource (`onBusy: 'queue'`) instead of being refused; an
 * account's line holds jobs over its limit of running jobs (slots.ts). The
 * record it guards (the lock, the account's slots) carries the line's
 * pointers `{ head, tail }`; entry `seq` (head ≤ seq < tail) is a blob
 * (`line/<resource>/<seq>`, `slotline/<account>/<seq>`) = `{ jobId, at }`.
 * Entering the line bumps `tail` with one conditional write of that record
 * and then creates the entry at the seq it took (create-only); handing on
 * reads the entry at `head`, so starting the next job costs the same with 10
 * or 10 000 waiting.
 *
 * A hand-off that finds the head's entry missing writes a tombstone there,
 * create-only: an enqueuer that died, or is slow, can never have its entry
 * appear behind the hand-off (its create fails and it enters again).
 * Seqs start at the time the line was first used, so a lock removed by the
 * reaper and made again never reuses an entry key left behind.
 */
import { z } from 'zod'
import type { Clock } from '../core/clock.ts'
import { parseRecord } from '../core/records.ts'
import { keys } from '../storage/keys.ts'
import type { BlobPort } from '../storage/port.ts'

/** Where a line's entries are stored: the key of the entry at `seq`. */
export type LineKeys = (seq: number) => string

export const resourceLine = (resource: string): LineKeys => (seq) => keys.lineEntry(resource, seq)
export const accountLine = (account: string): LineKeys => (seq) => keys.accountLineEntry(account, seq)

export interface Line {
  head: number
  tail: number
}

const LineEntrySchema = z.union([
  z.object({ jobId: z.string(), at: z.number() }),
  /** Written by a hand-off where an entry was missing: the seq is passed over. */
  z.object({ tombstone: z.literal(true), at: z.number() }),
])
type LineEntry = z.infer<typeof LineEntrySchema>

export const waitingInLine = (line: Line | undefined) => (line ? line.tail - line.head : 0)

/** The pointers of a line not used yet. */
export const emptyLine = (now: number): Line => ({ head: Math.floor(now), tail: Math.floor(now) })

export async function readLineEntry(store: BlobPort, entries: LineKeys, seq: number): Promise<LineEntry | null> {
  const key = entries(seq)
  const blob = await store.read(key)
  return blob ? parseRecord(key, blob.data, LineEntrySchema) : null
}

/** Creates this job's entry at `seq`; false if a hand-off passed the seq first (a tombstone is there). */
export async function writeLineEntry(store: BlobPort, clock: Clock, entries: LineKeys, seq: number, jobId: string): Promise<boolean> {
  const key = entries(seq)
  if ((await store.create(key, JSON.stringify({ jobId, at: clock.now() }))).ok) return true
  // A create whose answer was lost after it landed is reported as refused: the entry says whose it is.
  const found = await readLineEntry(store, entries, seq)
  return found !== null && 'jobId' in found && found.jobId === jobId
}

export interface NextInLine {
  /** The job whose turn it is, and its seq; null when nobody waits any more. */
  next: { seq: number; jobId: string } | null
  /** Entries of jobs passed over (ended) and of the one whose turn it is: deleted once the hand-off is written. */
  consumed: number[]
}

/**
 * The first job in the line that still waits. A job whose state exists has
 * ended before its turn (canceled, or failed at submit) and is skipped, as
 * is one `stillWaits` says no longer waits.
 */
export async function nextInLine(
  store: BlobPort,
  clock: Clock,
  entries: LineKeys,
  line: Line,
  stillWaits: (jobId: string) => Promise<boolean> = async () => true,
): Promise<NextInLine> {
  const consumed: number[] = []
  for (let seq = line.head; seq < line.tail; seq++) {
    let entry = await readLineEntry(store, entries, seq)
    if (!entry) {
      const tombstone = JSON.stringify({ tombstone: true, at: clock.now() })
      if ((await store.create(entries(seq), tombstone)).ok) continue
      entry = await readLineEntry(store, entries, seq)
      // Gone again: consumed and deleted by a hand-off that moved the head past it, which makes ours fail its write.
      if (!entry) continue
    }
    // Tombstones stay: a late enqueuer's create must keep failing there.
    if ('tombstone' in entry) continue
    consumed.push(seq)
    if (!(await stillWaits(entry.jobId)) || (await store.read(keys.state(entry.jobId)))) continue
    return { next: { seq, jobId: entry.jobId }, consumed }
  }
  return { next: null, consumed }
}

/**
 * Deletes consumed job entries; best effort (a leftover is a few bytes that
 * nothing reads again, as is every tombstone).
 */
export async function forgetLineEntries(store: BlobPort, entries: LineKeys, seqs: readonly number[]) {
  await Promise.all(seqs.map((seq) => store.delete(entries(seq)).catch(() => {})))
}
