/**
 * One live job per resource. The lock is a blob at `lock/<resource>` that
 * changes only through conditional writes:
 *
 *   absent ──create──▶ held ──release (by its job)──▶ released ──▶ held (next job)
 *                        ├── expired: taken over by replace ──▶ held (next job)
 *                        └── release with jobs in its line ──▶ held (the line's head)
 *
 * With jobs waiting in its line (line.ts), a lock goes only to the line's
 * head: release hands it on in the same conditional write, and a newcomer
 * is refused even when the lock expired or its holder is gone (the waiting
 * jobs' due entries hand it on then, see handOffStale).
 *
 * A released lock is kept (Blobs cannot delete conditionally, and an
 * unconditional delete could remove a lock another job just took). The
 * reaper removes long-released locks in two steps: replace with `reaping`,
 * then delete. Acquirers wait out a young `reaping` marker, so the delete can
 * only hit the marker: the reaper's run is capped at 30 s, well under
 * REAPING_GRACE_MS.
 */
import type { Clock } from '../core/clock.ts'
import type { BlobPort } from '../storage/port.ts'
import { StorageUnavailableError } from '../storage/port.ts'
import { keys } from '../storage/keys.ts'
import { parseRecord } from '../core/records.ts'
import { type LockRecord, LockRecordSchema } from '../core/types.ts'
import { forgetLineEntries, nextInLine, resourceLine, waitingInLine } from './line.ts'

/** Just past the background function's 15-minute cap. */
export const DEFAULT_LOCK_TTL_MS = 16 * 60_000
export const REAPING_GRACE_MS = 60_000
const MAX_ROUNDS = 8

export interface LockHolder {
  jobId: string
  acquiredAt: number
  expiresAt: number
  /** Its job waits for a slot of its account: gone only once the job ended (jobs/takeover.ts). */
  waitsForAccount?: true
}

type HeldLock = Extract<LockRecord, { state: 'held' }>

export const holderOf = (record: HeldLock): LockHolder => ({
  jobId: record.jobId,
  acquiredAt: record.acquiredAt,
  expiresAt: record.expiresAt,
  ...(record.waitsForAccount ? { waitsForAccount: true as const } : {}),
})

/**
 * A held lock counts as its holder's until it expires; one whose job waits
 * for a slot of its account never expires (the wait has no bound), so only
 * `isGone` (the job ended, or was never written) lets it go.
 */
export const mayBeLive = (record: HeldLock, now: number) => record.expiresAt > now || record.waitsForAccount === true

export interface AcquireOptions {
  /** A live lock may still be taken over if this says its holder is gone. */
  canTakeOver?(holder: LockHolder): Promise<boolean>
}

export type AcquireResult =
  | { acquired: true; tookOverFrom: string | null }
  | { acquired: false; holder: LockHolder }

export type ReleaseResult =
  /** `handedTo`: the line's job that holds the lock now; it must be started (jobs/launch.ts). */
  | { released: true; handedTo?: string }
  | { released: false; reason: 'missing' | 'held_by_another_job' | 'already_released'; holder?: LockHolder }

const encode = (record: LockRecord) => JSON.stringify(record)

/** Reads a lock without side effects; throws `CorruptRecordError` for a record it cannot parse. */
export async function peekLock(store: BlobPort, resource: string) {
  const key = keys.lock(resource)
  const blob = await store.read(key)
  return blob ? { record: parseRecord(key, blob.data, LockRecordSchema), version: blob.version } : null
}

/** Takes the lock for `jobId`, atomically, taking over an expired or released one. */
export async function acquireLock(
  store: BlobPort,
  clock: Clock,
  resource: string,
  jobId: string,
  ttlMs = DEFAULT_LOCK_TTL_MS,
  options: AcquireOptions = {},
): Promise<AcquireResult> {
  const key = keys.lock(resource)
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const now = clock.now()
    const held: LockRecord = { state: 'held', jobId, acquiredAt: now, expiresAt: now + ttlMs }
    if ((await store.create(key, encode(held))).ok) return { acquired: true, tookOverFrom: null }

    const current = await peekLock(store, resource)
    if (!current) continue // deleted between our two calls: try to create again
    const { record, version } = current
    if (record.state === 'held') {
      const holder = holderOf(record)
      // Jobs waiting in its line come first: the lock is theirs, whatever state its holder is in.
      if (waitingInLine(record.line) > 0) return { acquired: false, holder }
      if (mayBeLive(record, now) && !(await options.canTakeOver?.(holder))) return { acquired: false, holder }
    }
    if (record.state === 'reaping' && record.since + REAPING_GRACE_MS > now) {
      await clock.sleep(25 * (round + 1)) // the reaper deletes it in a moment
      continue
    }
    // The line's pointers stay, so its seqs never repeat.
    const taken = record.state !== 'reaping' && record.line ? { ...held, line: record.line } : held
    if ((await store.replace(key, encode(taken), version)).ok) {
      return { acquired: true, tookOverFrom: record.state === 'held' ? record.jobId : null }
    }
  }
  throw new StorageUnavailableError(`lock ${resource} kept changing; gave up after ${MAX_ROUNDS} rounds`)
}

export interface ReleaseOptions {
  /** TTL of the lock for the job it is handed to. */
  ttlMs?: number
  /** Called before the lock is handed to `jobId`, so that job is started even if the caller dies right after. */
  beforeHandOff?(jobId: string): Promise<void>
}

/**
 * Releases the lock only if `jobId` still holds it; says why when it does
 * not. With jobs in its line it is handed to the first that still waits,
 * in the same conditional write (`handedTo`).
 */
export async function releaseLock(store: BlobPort, clock: Clock, resource: string, jobId: string, options: ReleaseOptions = {}): Promise<ReleaseResult> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const current = await peekLock(store, resource)
    if (!current) return { released: false, reason: 'missing' }
    const { record, version } = current
    if (record.state !== 'held') return { released: false, reason: 'already_released' }
    if (record.jobId !== jobId) return { released: false, reason: 'held_by_another_job', holder: holderOf(record) }
    if (waitingInLine(record.line) > 0) {
      const handedTo = await handOn(store, clock, resource, record, version, options)
      if (handedTo === undefined) continue
      return handedTo === null ? { released: true } : { released: true, handedTo }
    }
    const released = encode({ state: 'released', jobId, releasedAt: clock.now(), ...(record.line ? { line: record.line } : {}) })
    if ((await store.replace(keys.lock(resource), released, version)).ok) return { released: true }
  }
  throw new StorageUnavailableError(`lock ${resource} kept changing; gave up releasing it`)
}

/**
 * Hands a held lock to its line's next waiting job (or releases it when none
 * waits), conditionally on `version`. Returns the job it went to, null if
 * released, undefined if the lock changed meanwhile.
 */
async function handOn(
  store: BlobPort,
  clock: Clock,
  resource: string,
  record: HeldLock,
  version: string,
  options: ReleaseOptions,
): Promise<string | null | undefined> {
  const line = record.line!
  const { next, consumed } = await nextInLine(store, clock, resourceLine(resource), line)
  const now = clock.now()
  if (next) await options.beforeHandOff?.(next.jobId)
  const written = next
    ? { state: 'held' as const, jobId: next.jobId, acquiredAt: now, expiresAt: now + (options.ttlMs ?? DEFAULT_LOCK_TTL_MS), line: { head: next.seq + 1, tail: line.tail } }
    : { state: 'released' as const, jobId: record.jobId, releasedAt: now, line: { head: line.tail, tail: line.tail } }
  if (!(await store.replace(keys.lock(resource), encode(written), version)).ok) return undefined
  await forgetLineEntries(store, resourceLine(resource), consumed)
  return next?.jobId ?? null
}

/**
 * Hands a lock whose holder is gone (expired, or `isGone` says so) to its
 * line's head. Called by a waiting job's due entry, so a line behind a
 * holder that never releases (its submit died) does not wait forever.
 * Returns the job it went to and the holder it was taken from, or null.
 */
export async function handOffStale(
  store: BlobPort,
  clock: Clock,
  resource: string,
  isGone: (holder: LockHolder) => Promise<boolean>,
  options: ReleaseOptions = {},
): Promise<{ handedTo: string | null; tookOverFrom: string } | null> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const current = await peekLock(store, resource)
    if (!current || current.record.state !== 'held' || waitingInLine(current.record.line) === 0) return null
    const { record, version } = current
    if (mayBeLive(record, clock.now()) && !(await isGone(holderOf(record)))) return null
    const handedTo = await handOn(store, clock, resource, record, version, options)
    if (handedTo === undefined) continue
    // `handedTo` null: every job in the line had ended; the lock is released.
    return { handedTo, tookOverFrom: record.jobId }
  }
  throw new StorageUnavailableError(`lock ${resource} kept changing; gave up handing it on`)
}

/**
 * Restarts the TTL of a lock `jobId` holds, counting from now; false if it
 * no longer holds it. The worker calls it just before claiming the job:
 * Netlify may start it minutes after the submit took the lock (retries at +1
 * and +3 min), and the lock must outlive the worker's whole 15 minutes.
 */
export async function renewLock(store: BlobPort, clock: Clock, resource: string, jobId: string, ttlMs = DEFAULT_LOCK_TTL_MS) {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const current = await peekLock(store, resource)
    if (!current || current.record.state !== 'held' || current.record.jobId !== jobId) return false
    // Never shortened: a job waiting for its next attempt holds it past that attempt.
    // Its job runs now: the lock expires again (the mark of a wait for its account goes).
    const { waitsForAccount: _, ...record } = current.record
    const renewed = encode({ ...record, expiresAt: Math.max(record.expiresAt, clock.now() + ttlMs) })
    if ((await store.replace(keys.lock(resource), renewed, current.version)).ok) return true
  }
  throw new StorageUnavailableError(`lock ${resource} kept changing; gave up renewing it`)
}

/**
 * Marks the lock `jobId` holds as waiting for a slot of its account, so it
 * does not expire while the job waits; false if the job does not hold it.
 */
export async function markWaitsForAccount(store: BlobPort, resource: string, jobId: string) {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const current = await peekLock(store, resource)
    if (!current || current.record.state !== 'held' || current.record.jobId !== jobId) return false
    if (current.record.waitsForAccount) return true
    if ((await store.replace(keys.lock(resource), encode({ ...current.record, waitsForAccount: true }), current.version)).ok) return true
  }
  throw new StorageUnavailableError(`lock ${resource} kept changing; gave up marking it`)
}

/**
 * Deletes a lock released more than `minAgeMs` ago (the reaper's clean-up).
 * Returns whether it was deleted.
 */
export async function removeReleasedLock(store: BlobPort, clock: Clock, resource: string, minAgeMs: number) {
  const current = await peekLock(store, resource)
  if (!current) return false
  const { record, version } = current
  const now = clock.now()
  const stale =
    (record.state === 'released' && record.releasedAt + minAgeMs <= now) ||
    (record.state === 'reaping' && record.since + REAPING_GRACE_MS <= now)
  if (!stale) return false
  const marked = await store.replace(keys.lock(resource), encode({ state: 'reaping', since: now }), version)
  if (!marked.ok) return false
  await store.delete(keys.lock(resource))
  return true
}
