/**
 * The due-time index: work that must happen at a time (a delayed start, a
 * queued job's turn, a waiting job's guard, a retry after its wait, a continuation's fallback) is one empty blob
 * `due/<minute>/<at>~<type>~<id>` in the bucket of the minute it is due.
 * The dispatcher lists only buckets that are due, so its cost follows what is
 * due, never what is scheduled. An entry is written before the thing it
 * stands for can be forgotten and removed only after it was handled, so a
 * crash in between handles it twice, never zero times: every handler must be
 * idempotent (a start is conditional on the job's spec, see start.ts).
 */
import { keys, safePart } from '../storage/keys.ts'
import type { BlobPort } from '../storage/port.ts'

export const DUE_MINUTE_MS = 60_000
export const dueMinute = (at: number) => Math.floor(at / DUE_MINUTE_MS)

/** What an entry asks for; the dispatcher has one handler per type. */
export const DUE_TYPES = ['start', 'retry', 'webhook', 'guard', 'continue'] as const
export type DueType = (typeof DUE_TYPES)[number]

export interface DueEntry {
  /** Its storage key. */
  key: string
  /** When it is due (ms). */
  at: number
  type: DueType
  /** What it is about, e.g. a job id. */
  id: string
}

export class BadDueEntryError extends Error {
  override name = 'BadDueEntryError'
}

const AT_WIDTH = 15

/**
 * The key of an entry: the same (at, type, id) always gives the same key, so
 * filing twice is harmless. A time between two ms (a clock may give one) is
 * filed at the next whole ms: never before it is due.
 */
export function dueKey(at: number, type: DueType, id: string): string {
  const due = Math.ceil(at)
  if (!Number.isSafeInteger(due) || due < 0) throw new BadDueEntryError(`due time must be a time in ms ≥ 0, not ${at}`)
  return `${keys.dueFolder(dueMinute(due))}/${String(due).padStart(AT_WIDTH, '0')}~${type}~${safePart(id, 'due entry id')}`
}

/** Files an entry. Unconditional: the key says everything, so a repeat writes the same blob. */
export async function addDue(store: BlobPort, at: number, type: DueType, id: string): Promise<DueEntry> {
  const key = dueKey(at, type, id)
  await store.put(key, '')
  return { key, at: Math.ceil(at), type, id }
}

export async function removeDue(store: BlobPort, entry: Pick<DueEntry, 'key'>) {
  await store.delete(entry.key)
}

/** An entry from its key; null for a key this version does not know (left for an operator). */
export function parseDueKey(key: string): DueEntry | null {
  const match = /^due\/\d{10}\/(\d{15})~([a-z]+)~([^/~]+)$/.exec(key)
  if (!match) return null
  const type = DUE_TYPES.find((known) => known === match[2])
  if (!type) return null
  return { key, at: Number(match[1]), type, id: match[3]! }
}

/** The entries of one minute's bucket, earliest first. */
export async function listDueBucket(store: BlobPort, minute: number): Promise<{ entries: DueEntry[]; unknown: string[] }> {
  const { keys: found } = await store.list(`${keys.dueFolder(minute)}/`)
  const entries: DueEntry[] = []
  const unknown: string[] = []
  for (const key of found.sort()) {
    const entry = parseDueKey(key)
    if (entry) entries.push(entry)
    else unknown.push(key)
  }
  return { entries, unknown }
}

/**
 * The minutes that hold entries, up to `through`, in order. One listing of
 * the bucket folders: used only when the dispatcher has no cursor or is far
 * behind, and bounded by the minutes of the scheduling horizon, not by the
 * number of entries.
 */
export async function nonEmptyMinutes(store: BlobPort, through: number): Promise<number[]> {
  const { directories } = await store.list(keys.duePrefix, { directories: true })
  return directories
    .map((dir) => Number(dir.replace(/\/$/, '').slice(keys.duePrefix.length)))
    .filter((minute) => Number.isSafeInteger(minute) && minute <= through)
    .sort((a, b) => a - b)
}
