/**
 * How a reaper run walks its work: a bounded pool over a sequence that
 * starts where the previous run stopped (a small cursor blob), so an item
 * that keeps failing, or a backlog bigger than one run, never starves the
 * items after it. Each item is isolated: what it throws is logged and
 * counted, and the item stays where it is to be retried on a later pass.
 */
import { z } from 'zod'
import type { Logger } from '../core/deps.ts'
import { CorruptRecordError, parseRecord } from '../core/records.ts'
import { keys } from '../storage/keys.ts'
import type { BlobPort } from '../storage/port.ts'

/** Items in flight at once: storage round trips dominate, not CPU. */
export const REAPER_PARALLEL = 96

const CursorSchema = z.object({
  /** The last live job checked (its `queue/` key). */
  live: z.string().nullable(),
  /** The last expiry entry taken (its full key). */
  expiry: z.string().nullable(),
})
export type ReaperCursor = z.infer<typeof CursorSchema>

const NO_CURSOR: ReaperCursor = { live: null, expiry: null }

/** The previous run's cursor; a missing or unreadable one (or a failed read) starts from the beginning. */
export async function readCursor(store: BlobPort, log: Logger): Promise<ReaperCursor> {
  try {
    const blob = await store.read(keys.reaperCursor)
    return blob ? parseRecord(keys.reaperCursor, blob.data, CursorSchema) : NO_CURSOR
  } catch (error) {
    log.error('reaper: cursor not read; starting from the beginning', describeFailure(error))
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
  /** How many items were taken (from the front of the list). */
  taken: number
  /** The last item taken, for the cursor; null if none was. */
  last: string | null
  /** True when time ran out before the sequence did. */
  stopped: boolean
}

/**
 * Runs `work` over `items` with at most `parallel` in flight, taking no new
 * item once `outOfTime()`. An item that throws is passed to `failed` and the
 * run goes on.
 */
export async function runPool(
  items: readonly string[],
  parallel: number,
  outOfTime: () => boolean,
  work: (item: string) => Promise<void>,
  failed: (item: string, error: unknown) => void,
): Promise<PoolOutcome> {
  const outcome: PoolOutcome = { taken: 0, last: null, stopped: false }
  const worker = async () => {
    while (outcome.taken < items.length) {
      if (outOfTime()) {
        outcome.stopped = true
        return
      }
      const item = items[outcome.taken++]!
      outcome.last = item
      try {
        await work(item)
      } catch (error) {
        failed(item, error)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker))
  return outcome
}

/** What to log about a failed item: its name and message only (no stack, no record content). */
export function describeFailure(error: unknown) {
  if (error instanceof CorruptRecordError) return { error: error.name, record: error.key }
  if (error instanceof Error) return { error: error.name, message: error.message.slice(0, 300) }
  return { error: String(error).slice(0, 300) }
}
