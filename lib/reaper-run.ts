/**
 * How a reaper run walks its work: a bounded pool over a sequence that
 * starts where the previous run stopped (a small cursor blob), so an item
 * that keeps failing, or a backlog bigger than one run, never starves the
 * items after it. Each item is isolated: what it throws is logged and
 * counted, and the item stays where it is to be retried on a later pass.
 */
import { z } from 'zod'
import type { Logger } from './deps.ts'
import { CorruptRecordError, parseRecord } from './records.ts'
import { keys } from './storage/keys.ts'
import type { BlobPort } from './storage/port.ts'

/** Items in flight at once: storage round trips dominate, not CPU. */
export const REAPER_PARALLEL = 64

const CursorSchema = z.object({
  /** The last live job checked (its `queue/` key). */
  live: z.string().nullable(),
  /** The last expiry entry taken (its full key). */
  expiry: z.string().nullable(),
})
export type ReaperCursor = z.infer<typeof CursorSchema>

const NO_CURSOR: ReaperCursor = { live: null, expiry: null }

/** The previous run's cursor; a missing or unreadable one starts from the beginning. */
export async function readCursor(store: BlobPort, log: Logger): Promise<ReaperCursor> {
  const blob = await store.read(keys.reaperCursor)
  if (!blob) return NO_CURSOR
  try {
    return parseRecord(keys.reaperCursor, blob.data, CursorSchema)
  } catch (error) {
    if (!(error instanceof CorruptRecordError)) throw error
    log.error('reaper cursor unreadable; starting from the beginning', { key: error.key })
    return NO_CURSOR
  }
}

/** Written unconditionally: only the reaper writes it, and a lost update only moves a start point. */
export async function writeCursor(store: BlobPort, cursor: ReaperCursor) {
  await store.put(keys.reaperCursor, JSON.stringify(cursor))
}

/** `sorted` starting just after `after` and wrapping around, so every item gets its turn. */
export function rotateAfter(sorted: readonly string[], after: string | null): string[] {
  if (after === null) return [...sorted]
  const start = sorted.findIndex((key) => key > after)
  return start <= 0 ? [...sorted] : [...sorted.slice(start), ...sorted.slice(0, start)]
}

export interface PoolOutcome {
  /** The last item taken, for the cursor; null if none was. */
  last: string | null
  /** True when time ran out before the sequence did. */
  stopped: boolean
}

/**
 * Runs `work` over `items` with at most `parallel` in flight, taking no new
 * item once `outOfTime()`. An item that throws is passed to `failed` and the
 * run goes on. Items may come from an async generator (async generators
 * serve concurrent `next()` calls one after another).
 */
export async function runPool(
  items: AsyncIterable<string> | Iterable<string>,
  parallel: number,
  outOfTime: () => boolean,
  work: (item: string) => Promise<void>,
  failed: (item: string, error: unknown) => void,
): Promise<PoolOutcome> {
  const source = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : toAsync(items[Symbol.iterator]())
  const outcome: PoolOutcome = { last: null, stopped: false }
  let exhausted = false
  const worker = async () => {
    while (!exhausted) {
      if (outOfTime()) {
        outcome.stopped = true
        return
      }
      const next = await source.next()
      if (next.done) {
        exhausted = true
        return
      }
      outcome.last = next.value
      try {
        await work(next.value)
      } catch (error) {
        failed(next.value, error)
      }
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker))
  if (outcome.stopped && !exhausted) await source.return?.(undefined)
  return outcome
}

function toAsync(iterator: Iterator<string>): AsyncIterator<string> {
  return { next: async () => iterator.next() }
}

/** What to log about a failed item: its name and message only (no stack, no record content). */
export function describeFailure(error: unknown) {
  if (error instanceof CorruptRecordError) return { error: error.name, record: error.key }
  if (error instanceof Error) return { error: error.name, message: error.message.slice(0, 300) }
  return { error: String(error).slice(0, 300) }
}
