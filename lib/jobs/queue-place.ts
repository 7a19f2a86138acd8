/**
 * Where a queued job stands in its resource's line, for its status:
 * `position` 1 is next, and `ahead` names the job it waits for (the holder,
 * or the entry before it), only when the resource is the caller's own, as a
 * 409 names its holder only then. Two reads at most, whatever the line's length.
 */
import { z } from 'zod'
import type { Deps } from '../core/deps.ts'
import type { JobSpec } from '../core/types.ts'
import { readLineEntry } from '../locks/line.ts'
import { peekLock } from '../locks/lock.ts'

export const QueuePlaceSchema = z.strictObject({
  /** 1: the next job to get the resource. */
  position: z.number().int().positive(),
  /** The job it waits behind (the one holding the resource, or the one before it in line); null for a shared resource. */
  ahead: z.string().nullable(),
})
export type QueuePlace = z.infer<typeof QueuePlaceSchema>

export async function queuePlace(deps: Pick<Deps, 'store'>, spec: JobSpec): Promise<QueuePlace | null> {
  if (spec.queueSeq === undefined || !spec.lockKey || spec.dispatchedAt !== undefined) return null
  const lock = await peekLock(deps.store, spec.lockKey)
  const record = lock?.record
  if (record?.state !== 'held' || !record.line) return null
  const { head, tail } = record.line
  const seq = spec.queueSeq
  if (seq < head || seq >= tail) return null // being handed the lock, or passed over and entering again
  const own = spec.lockKey.startsWith(`${spec.account}:`)
  if (!own) return { position: seq - head + 1, ahead: null }
  if (seq === head) return { position: 1, ahead: record.jobId }
  const before = await readLineEntry(deps.store, spec.lockKey, seq - 1)
  return { position: seq - head + 1, ahead: before && 'jobId' in before ? before.jobId : null }
}
