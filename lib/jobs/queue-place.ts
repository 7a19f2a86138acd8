/**
 * Where a queued job stands in the line it waits in, for its status: its
 * resource's (locks/line.ts) or its account's (locks/slots.ts). `position`
 * 1 is next. `ahead` names the job it waits for (the holder, or the entry
 * before it), only in the line of a resource that is the caller's own, as a
 * 409 names its holder only then; in its account's line it waits for any of
 * the account's running jobs, so it names none. Two reads at most, whatever
 * the line's length.
 */
import { z } from 'zod'
import type { Deps } from '../core/deps.ts'
import type { JobSpec } from '../core/types.ts'
import { readLineEntry, resourceLine } from '../locks/line.ts'
import { peekLock } from '../locks/lock.ts'
import { readSlots } from '../locks/slots.ts'

export const QueuePlaceSchema = z.strictObject({
  /** 1: the next job to get the resource (or a slot of its account). */
  position: z.number().int().positive(),
  /** The job it waits behind (the one holding the resource, or the one before it in line); null for a shared resource and in its account's line. */
  ahead: z.string().nullable(),
  /** "resource": behind another job on its resource (`onBusy: "queue"`); "account": its account runs ACCOUNT_MAX_RUNNING jobs already. */
  waitingFor: z.enum(['resource', 'account']),
})
export type QueuePlace = z.infer<typeof QueuePlaceSchema>

export async function queuePlace(deps: Pick<Deps, 'store'>, spec: JobSpec): Promise<QueuePlace | null> {
  if (spec.dispatchedAt !== undefined) return null
  if (spec.accountSeq !== undefined) return accountPlace(deps, spec, spec.accountSeq)
  if (spec.queueSeq === undefined || !spec.lockKey) return null
  const lock = await peekLock(deps.store, spec.lockKey)
  const record = lock?.record
  if (record?.state !== 'held' || !record.line) return null
  const { head, tail } = record.line
  const seq = spec.queueSeq
  if (seq < head || seq >= tail) return null // being handed the lock, or passed over and entering again
  const own = spec.lockKey.startsWith(`${spec.account}:`)
  if (!own) return { position: seq - head + 1, ahead: null, waitingFor: 'resource' }
  if (seq === head) return { position: 1, ahead: record.jobId, waitingFor: 'resource' }
  const before = await readLineEntry(deps.store, resourceLine(spec.lockKey), seq - 1)
  return { position: seq - head + 1, ahead: before && 'jobId' in before ? before.jobId : null, waitingFor: 'resource' }
}

async function accountPlace(deps: Pick<Deps, 'store'>, spec: JobSpec, seq: number): Promise<QueuePlace | null> {
  const line = (await readSlots(deps.store, spec.account))?.record.line
  if (!line || seq < line.head || seq >= line.tail) return null // being handed a slot
  return { position: seq - line.head + 1, ahead: null, waitingFor: 'account' }
}
