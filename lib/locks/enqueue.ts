/**
 * Entering a resource's line (see line.ts): a job that chose to wait rather
 * than be refused. One conditional write of the lock takes the next seq, one
 * create-only write files the entry there. If the lock turns out free (or
 * its holder gone, with nobody waiting) the job simply takes it.
 */
import type { Clock } from '../core/clock.ts'
import type { LockRecord } from '../core/types.ts'
import { type BlobPort, StorageUnavailableError } from '../storage/port.ts'
import { keys } from '../storage/keys.ts'
import { type Line, emptyLine, resourceLine, waitingInLine, writeLineEntry } from './line.ts'
import { type AcquireOptions, type LockHolder, DEFAULT_LOCK_TTL_MS, acquireLock, holderOf, mayBeLive, peekLock } from './lock.ts'

export type EnterResult =
  | { acquired: true; tookOverFrom: string | null }
  /** Waiting at `seq`; `line` as this entry left it, `holder` the job holding the resource then. */
  | { acquired: false; seq: number; line: Line; holder: LockHolder }

const MAX_ROUNDS = 8

export async function enterLine(
  store: BlobPort,
  clock: Clock,
  resource: string,
  jobId: string,
  ttlMs = DEFAULT_LOCK_TTL_MS,
  options: AcquireOptions = {},
): Promise<EnterResult> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const current = await peekLock(store, resource)
    const record = current?.record
    if (record?.state === 'held' && record.jobId === jobId) return { acquired: true, tookOverFrom: null }
    if (!current || record?.state !== 'held' || !(await busy(record, clock.now(), options))) {
      const taken = await acquireLock(store, clock, resource, jobId, ttlMs, options)
      if (taken.acquired) return taken
      continue // someone else took it meanwhile: wait behind them
    }
    const line = record.line ?? emptyLine(clock.now())
    const seq = line.tail
    const bumped: LockRecord = { ...record, line: { head: line.head, tail: seq + 1 } }
    if (!(await store.replace(keys.lock(resource), JSON.stringify(bumped), current.version)).ok) continue
    // False: a hand-off passed this seq before the entry was written (a tombstone is there): take a new place.
    if (await writeLineEntry(store, clock, resourceLine(resource), seq, jobId)) {
      return { acquired: false, seq, line: bumped.line!, holder: holderOf(record) }
    }
  }
  throw new StorageUnavailableError(`lock ${resource} kept changing; gave up entering its line`)
}

/** A held lock is busy while its holder lives, or while jobs wait for it (they come first). */
async function busy(record: Extract<LockRecord, { state: 'held' }>, now: number, options: AcquireOptions) {
  if (waitingInLine(record.line) > 0) return true
  return mayBeLive(record, now) && !(await options.canTakeOver?.(holderOf(record)))
}
