/**
 * The dispatcher, run every minute: handles the due-time index's entries
 * whose time has come. Its work is bounded per run (buckets probed, entries
 * taken, a time budget) and follows what is due:
 * - a cursor blob says before which minute every bucket was found empty, so a
 *   run lists the buckets from the minute before that one (for an entry whose
 *   write landed just after a run listed its bucket) up to the current one:
 *   three listings when nothing is due, however much is scheduled later;
 * - without a cursor, or far behind, one listing of the bucket folders finds
 *   the minutes that hold anything.
 * Each entry is isolated: one that throws is filed again a minute later (so
 * it neither blocks the cursor nor is lost) and the run goes on.
 */
import { z } from 'zod'
import type { Deps } from '../core/deps.ts'
import { parseRecord } from '../core/records.ts'
import { describeFailure, runPool } from '../reaper/run.ts'
import { keys } from '../storage/keys.ts'
import { DUE_MINUTE_MS, type DueEntry, type DueType, addDue, dueKey, dueMinute, listDueBucket, nonEmptyMinutes, removeDue } from './due-index.ts'

/** What a handler made of an entry: done (remove it), or not yet (file it again for `at`). */
export type DueOutcome = { done: true } | { done: false; at: number }

export type DueHandlers = Record<DueType, (deps: Deps, entry: DueEntry) => Promise<DueOutcome>>

export interface DispatcherOptions {
  /** Time a run may spend (scheduled functions stop at 30 s). */
  budgetMs?: number
  /** Most entries handled per run; the rest wait for the next. */
  maxEntries?: number
  /** Most buckets listed one by one; further behind, the folders are listed once instead. */
  maxProbes?: number
  parallel?: number
}

export interface DispatchReport {
  bucketsListed: number
  handled: number
  /** Entries filed again for later: not yet possible, or a failed attempt. */
  deferred: number
  itemsFailed: number
  /** Keys under `due/` this version cannot read: left in place. */
  unknownEntries: number
  unfinished: boolean
}

/** Late writes: an entry's write may land after the run that listed its bucket. */
const REWIND_MINUTES = 1
/** A failing entry is tried again this much later. */
const FAILED_ENTRY_DELAY_MS = DUE_MINUTE_MS

const CursorSchema = z.object({ emptyBefore: z.number().int().nonnegative() })

export async function runDispatcher(deps: Deps, handlers: DueHandlers, options: DispatcherOptions = {}): Promise<DispatchReport> {
  const { budgetMs = 20_000, maxEntries = 2000, maxProbes = 30, parallel = 32 } = options
  const startedAt = deps.clock.now()
  const nowMinute = dueMinute(startedAt)
  const report: DispatchReport = { bucketsListed: 0, handled: 0, deferred: 0, itemsFailed: 0, unknownEntries: 0, unfinished: false }
  const outOfTime = () => deps.clock.now() - startedAt > budgetMs

  const cursor = await readCursor(deps)
  let minutes: number[]
  if (cursor !== null && nowMinute - cursor + REWIND_MINUTES < maxProbes) {
    const from = Math.max(0, cursor - REWIND_MINUTES)
    minutes = Array.from({ length: nowMinute - from + 1 }, (_, i) => from + i)
  } else {
    minutes = await nonEmptyMinutes(deps.store, nowMinute)
    if (!minutes.includes(nowMinute)) minutes.push(nowMinute)
  }

  /** The first minute that still holds an entry after this run (or was not reached). */
  let firstLeft: number | null = null
  const leftAt = (minute: number) => {
    if (firstLeft === null || minute < firstLeft) firstLeft = minute
  }
  let taken = 0
  for (const minute of minutes) {
    if (outOfTime() || taken >= maxEntries) {
      report.unfinished = true
      leftAt(minute)
      break
    }
    let listing: Awaited<ReturnType<typeof listDueBucket>>
    try {
      listing = await listDueBucket(deps.store, minute)
      report.bucketsListed++
    } catch (error) {
      deps.log.error('dispatcher: bucket not listed; left for the next run', { minute, ...describeFailure(error) })
      report.itemsFailed++
      leftAt(minute)
      continue
    }
    report.unknownEntries += listing.unknown.length
    // Left in place, they hold the cursor at their minute: an operator removes them.
    if (listing.unknown.length > 0) deps.log.error('dispatcher: entries of an unknown shape left in place', { minute, keys: listing.unknown.slice(0, 5) })
    const due = listing.entries.filter((entry) => entry.at <= startedAt).slice(0, maxEntries - taken)
    taken += due.length
    if (due.length < listing.entries.length || listing.unknown.length > 0) leftAt(minute)
    const byKey = new Map(due.map((entry) => [entry.key, entry]))
    const outcome = await runPool(
      due.map((entry) => entry.key),
      parallel,
      outOfTime,
      async (key) => {
        const entry = byKey.get(key)!
        let result: DueOutcome
        try {
          result = await handlers[entry.type](deps, entry)
        } catch (error) {
          report.itemsFailed++
          deps.log.error('dispatcher: entry failed; filed again for later', { entry: key, ...describeFailure(error) })
          result = { done: false, at: startedAt + FAILED_ENTRY_DELAY_MS }
        }
        if (result.done) report.handled++
        else if (dueKey(result.at, entry.type, entry.id) === entry.key) {
          leftAt(minute) // not yet, and no new time: it stays as it is
          return
        } else {
          // Filed again before it is removed: a crash in between leaves it twice, never gone.
          await addDue(deps.store, result.at, entry.type, entry.id)
          report.deferred++
        }
        await removeDue(deps.store, entry)
      },
      (key, error) => {
        // Not even filed again or removed: it stays in its bucket, which keeps the cursor there.
        report.itemsFailed++
        leftAt(minute)
        deps.log.error('dispatcher: entry left in place', { entry: key, ...describeFailure(error) })
      },
    )
    if (outcome.stopped) {
      report.unfinished = true
      leftAt(minute)
      break
    }
  }

  const emptyBefore = Math.min(firstLeft ?? nowMinute, nowMinute)
  if (emptyBefore !== cursor) {
    await deps.store.put(keys.dispatcherCursor, JSON.stringify({ emptyBefore })).catch((error: unknown) => {
      deps.log.error('dispatcher: cursor not saved', describeFailure(error))
    })
  }
  return report
}

/** The saved cursor; a missing or unreadable one means "list the folders". */
async function readCursor(deps: Deps): Promise<number | null> {
  try {
    const blob = await deps.store.read(keys.dispatcherCursor)
    return blob ? parseRecord(keys.dispatcherCursor, blob.data, CursorSchema).emptyBefore : null
  } catch (error) {
    deps.log.error('dispatcher: cursor not read; listing the due folders', describeFailure(error))
    return null
  }
}
