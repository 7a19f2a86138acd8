/**
 * The job's event log, built so an append costs one conditional write and
 * the same bytes however long the log grows, and a reader needs few reads.
 *
 * Layout:
 * - the newest events (at most CHUNK_SIZE) live in the job state's `tail`,
 *   so an append is the same write that saves progress and heartbeat, and an
 *   idle poll is one read;
 * - when the tail is full, it is written once as an immutable chunk blob
 *   (`events/<job>/c/<n>`, CHUNK_SIZE events);
 * - every PAGE_SIZE events, the page is also written whole
 *   (`events/<job>/p/<n>`), so a late reader replays 1000 events in 10 reads.
 *
 * Chunks and pages only ever hold committed events (flushed from the stored
 * tail before the state write that drops them from it), so their content is
 * fixed by their position and rewriting one is harmless. An append of several
 * events leaves the tail longer than a chunk until the next append flushes it.
 *
 * The log is capped: past `maxEvents`, whole pages are dropped from the front
 * and `firstSeq` tells readers where the log now starts.
 */
import type { BlobPort } from './storage/port.ts'
import { keys } from './storage/keys.ts'
import { type JobEvent, JobEventSchema, type LogPosition } from './types.ts'
import { z } from 'zod'

export const CHUNK_SIZE = 10
export const PAGE_SIZE = 100
export const CHUNKS_PER_PAGE = PAGE_SIZE / CHUNK_SIZE
export const DEFAULT_MAX_EVENTS = 1000
/** The cap keeps at least two pages so a reader a little behind never loses its place. */
export const MIN_MAX_EVENTS = 2 * PAGE_SIZE

const EventListSchema = z.array(JobEventSchema)

export const emptyLog = (): LogPosition => ({ firstSeq: 1, flushedSeq: 0, lastSeq: 0, tail: [] })

/** Where a log's chunks and pages live: a job's events, or an account's credit ledger. */
export interface LogKeys {
  chunk(index: number): string
  page(index: number): string
}

export const jobLog = (jobId: string): LogKeys => ({
  chunk: (index) => keys.chunk(jobId, index),
  page: (index) => keys.page(jobId, index),
})

export interface NewEvent {
  type: string
  data: unknown
}

export interface AppendPlan {
  log: LogPosition
  appended: JobEvent[]
  /** Blobs to write before the state that refers to them is saved. */
  writes: { key: string; data: string }[]
  /** Blobs to delete after the state is saved (pages dropped by the cap). */
  deletes: string[]
}

/**
 * Source of a flushed chunk's events. The worker serves them from memory;
 * a cold appender (the reaper, cancel) reads them from storage.
 */
export type ChunkSource = (chunkIndex: number) => Promise<JobEvent[]>

export const chunksFromStorage =
  (store: BlobPort, where: LogKeys): ChunkSource =>
  async (index) => {
    const blob = await store.read(where.chunk(index))
    if (!blob) throw new Error(`${where.chunk(index)} is missing`)
    return EventListSchema.parse(JSON.parse(blob.data))
  }

/** Works out the new log position and the blobs to write for appending `events`. */
export async function planAppend(
  where: LogKeys,
  log: LogPosition,
  events: NewEvent[],
  now: number,
  maxEvents: number,
  chunkSource: ChunkSource,
): Promise<AppendPlan> {
  let { firstSeq, flushedSeq, lastSeq } = log
  let tail = [...log.tail]
  const writes: AppendPlan['writes'] = []
  const deletes: string[] = []
  const appended: JobEvent[] = []
  const written = new Map<number, JobEvent[]>()

  /** Writes the tail's first CHUNK_SIZE events as a chunk (and its page when the page is full). */
  const flush = async () => {
    const chunkIndex = flushedSeq / CHUNK_SIZE
    const chunk = tail.slice(0, CHUNK_SIZE)
    writes.push({ key: where.chunk(chunkIndex), data: JSON.stringify(chunk) })
    written.set(chunkIndex, chunk)
    flushedSeq += CHUNK_SIZE
    tail = tail.slice(CHUNK_SIZE)
    if (flushedSeq % PAGE_SIZE === 0) {
      const pageIndex = flushedSeq / PAGE_SIZE - 1
      const pageEvents: JobEvent[] = []
      for (let c = pageIndex * CHUNKS_PER_PAGE; c < (pageIndex + 1) * CHUNKS_PER_PAGE; c++) {
        pageEvents.push(...(written.get(c) ?? (await chunkSource(c))))
      }
      writes.push({ key: where.page(pageIndex), data: JSON.stringify(pageEvents) })
    }
  }

  // Only committed events are flushed: full chunks of the stored tail, before
  // this append. New events go to the tail, which may so hold more than one
  // chunk until the next append; a writer that loses the race for the record
  // has then written nothing but blobs whose content was already fixed.
  if (events.length > 0) while (tail.length >= CHUNK_SIZE) await flush()

  for (const event of events) {
    lastSeq += 1
    const stored: JobEvent = { seq: lastSeq, type: event.type, data: event.data ?? null, ts: now }
    tail.push(stored)
    appended.push(stored)

    while (lastSeq - firstSeq + 1 > maxEvents && firstSeq + PAGE_SIZE - 1 <= flushedSeq) {
      const pageIndex = (firstSeq - 1) / PAGE_SIZE
      deletes.push(where.page(pageIndex))
      for (let c = pageIndex * CHUNKS_PER_PAGE; c < (pageIndex + 1) * CHUNKS_PER_PAGE; c++) {
        deletes.push(where.chunk(c))
      }
      firstSeq += PAGE_SIZE
    }
  }
  return { log: { firstSeq, flushedSeq, lastSeq, tail }, appended, writes, deletes }
}

/**
 * Seals a finished log: writes its last page (full or partial) from
 * committed events, so a late reader replays the whole log from pages. Only
 * for logs that can no longer grow; null when there is nothing to gain.
 */
export async function planSeal(where: LogKeys, log: LogPosition, chunkSource: ChunkSource) {
  if (log.sealed || log.lastSeq <= CHUNK_SIZE) return null
  const pageIndex = Math.floor((log.lastSeq - 1) / PAGE_SIZE)
  const events: JobEvent[] = []
  for (let c = pageIndex * CHUNKS_PER_PAGE; c < log.flushedSeq / CHUNK_SIZE; c++) events.push(...(await chunkSource(c)))
  events.push(...log.tail.filter((event) => event.seq > pageIndex * PAGE_SIZE))
  return { log: { ...log, sealed: true }, write: { key: where.page(pageIndex), data: JSON.stringify(events) } }
}

export interface EventSlice {
  events: JobEvent[]
  /** Set when the cap dropped events the reader asked for: the log now starts here. */
  truncatedBefore: number | null
}

/** A blob the reader expected was gone (dropped by the cap or retention meanwhile). */
export class LogMovedError extends Error {
  override name = 'LogMovedError'
}

/**
 * Events after `after`, at most `limit`, using pages for whole stretches and
 * chunks for the rest; all blob reads run in parallel.
 */
export async function readEvents(
  store: BlobPort,
  where: LogKeys,
  log: LogPosition,
  after: number,
  limit: number,
): Promise<EventSlice> {
  const from = Math.max(after + 1, log.firstSeq)
  const truncatedBefore = after + 1 < log.firstSeq ? log.firstSeq : null
  const to = Math.min(log.lastSeq, from + limit - 1)
  if (to < from) return { events: [], truncatedBefore }

  const reads: { key: string; first: number; last: number }[] = []
  // The newest events are in the state's tail (possibly already flushed too): blobs only before it.
  const tailStart = log.tail[0]?.seq ?? log.lastSeq + 1
  const blobEnd = Math.min(to, tailStart - 1)
  let seq = from
  while (seq <= blobEnd) {
    const pageIndex = Math.floor((seq - 1) / PAGE_SIZE)
    const pageEnd = (pageIndex + 1) * PAGE_SIZE
    const last = Math.min(blobEnd, pageEnd)
    const pageWritten = pageEnd <= log.flushedSeq || (log.sealed === true && pageIndex === Math.floor((log.lastSeq - 1) / PAGE_SIZE))
    if (pageWritten && last - seq + 1 > CHUNK_SIZE) {
      reads.push({ key: where.page(pageIndex), first: seq, last })
      seq = last + 1
      continue
    }
    const chunkIndex = Math.floor((seq - 1) / CHUNK_SIZE)
    const chunkLast = Math.min(blobEnd, (chunkIndex + 1) * CHUNK_SIZE)
    reads.push({ key: where.chunk(chunkIndex), first: seq, last: chunkLast })
    seq = chunkLast + 1
  }

  const blobs = await Promise.all(reads.map((read) => store.read(read.key)))
  const events: JobEvent[] = []
  reads.forEach((read, i) => {
    const blob = blobs[i]
    if (!blob) throw new LogMovedError(`${read.key} is gone`)
    for (const event of EventListSchema.parse(JSON.parse(blob.data))) {
      if (event.seq >= read.first && event.seq <= read.last) events.push(event)
    }
  })
  for (const event of log.tail) if (event.seq >= seq && event.seq <= to) events.push(event)
  return { events, truncatedBefore }
}
