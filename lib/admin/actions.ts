/**
 * What an operator can do from the console: cancel any account's job, run a
 * failed job again, and grant credits once per grant id.
 */
import { z } from 'zod'
import type { Deps } from '../core/deps.ts'
import { ApiError, invalidRequest, notFound } from '../core/errors.ts'
import { parseRecord } from '../core/records.ts'
import { LedgerEntrySchema, readAccount } from '../credits/index.ts'
import { applyOnce } from '../credits/ledger.ts'
import { cancelJob } from '../jobs/read.ts'
import { readFailedSpec } from '../jobs/state.ts'
import { type Submitted, submitJob } from '../jobs/submit.ts'
import { expiryBucket, keys, safePart } from '../storage/keys.ts'
import { findJob } from './detail.ts'
import { GRANT_ID_PATTERN, type GrantBody } from './schemas.ts'

/** Cancels a job of any account, as its owner would (jobs/read.ts): 200 canceled, 202 asked, 409 finished. */
export async function adminCancel(deps: Deps, jobId: string) {
  const { account } = await findJob(deps, jobId)
  return cancelJob(deps, account, jobId)
}

/**
 * Runs a failed job again as a new job of the same account, kind, input,
 * source task, client job id, webhook and `onBusy` (not its start time): submitted as its owner would submit it, so
 * it is charged, locked and validated like any job (its first charge was
 * refunded when it failed). The failed job's id is the Idempotency-Key, in a
 * namespace of its own: a double click, or a retry of the request, answers
 * with the same new job (200) instead of making a second one.
 */
export async function adminRetry(deps: Deps, jobId: string): Promise<Submitted & { retryOf: string }> {
  const state = await findJob(deps, jobId)
  if (state.status !== 'failed') {
    throw new ApiError(409, 'job_not_failed', 'Only a failed job can be run again.', { extra: { status: state.status } })
  }
  const spec = await readFailedSpec(deps.store, jobId)
  if (!spec) throw new ApiError(409, 'retry_unavailable', 'This job\'s input was not kept (it failed before this version, or is being cleaned up): submit it again instead.')
  const body = {
    kind: spec.kind,
    input: spec.input,
    ...(spec.sourceTaskId === null ? {} : { sourceTaskId: spec.sourceTaskId }),
    ...(spec.clientJobId === null ? {} : { clientJobId: spec.clientJobId }),
    ...(spec.webhookUrl === undefined ? {} : { webhookUrl: spec.webhookUrl }),
    ...(spec.onBusy === undefined ? {} : { onBusy: spec.onBusy }),
  }
  const submitted = await submitJob(deps, spec.account, body, jobId, { idempotencyNamespace: 'operator-retry' })
  return { ...submitted, retryOf: jobId }
}

/** A grant id is accepted this long after the console made it; its record lives a while longer. */
export const GRANT_ID_TTL_MS = 3600_000
const GRANT_RECORD_MS = 2 * GRANT_ID_TTL_MS
const CLOCK_SKEW_MS = 5 * 60_000

const GrantRecordSchema = z.object({ amount: z.number().int(), reason: z.string(), from: z.number().int().nonnegative() })

/**
 * The record of one grant id, kept in the expiry bucket where it is due so
 * the reaper deletes it (deleting a due entry is all it does with a type it
 * does not know). It says what was asked and the ledger seq the grant is
 * searched for after, so a repeat finds the first attempt's entry instead of
 * granting again.
 */
const grantRecordKey = (account: string, grantId: string, madeAt: number) =>
  `${keys.expiryFolder(expiryBucket(madeAt + GRANT_RECORD_MS))}/grant~${account}.${grantId}`

/**
 * Grants credits once per grant id: the first request records the id with
 * the ledger position, then appends `grant:<id>`; a repeat (double click,
 * retry, a lost answer) searches the entries since that position and answers
 * with the entry already there. The same id with another amount or reason is
 * refused. An id older than GRANT_ID_TTL_MS is refused before anything is
 * written, so a grant is never repeated after its record is gone.
 */
export async function grantOnce(deps: Deps, account: string, body: GrantBody) {
  safePart(account, 'account')
  const madeAt = parseInt(GRANT_ID_PATTERN.exec(body.grantId)![1]!, 36)
  const now = deps.clock.now()
  if (madeAt < now - GRANT_ID_TTL_MS || madeAt > now + CLOCK_SKEW_MS) {
    throw invalidRequest('This grant id is too old (or from the future): reload the form for a new one.', [{ path: 'body.grantId', message: 'made more than an hour ago' }])
  }
  const current = await readAccount(deps.store, account)
  if (!current) throw notFound('account')
  const key = grantRecordKey(account, body.grantId, madeAt)
  const asked = { amount: body.amount, reason: body.reason }
  let from = current.record.ledger.lastSeq
  if (!(await deps.store.create(key, JSON.stringify({ ...asked, from }))).ok) {
    const blob = await deps.store.read(key)
    if (!blob) throw new ApiError(409, 'grant_busy', 'This grant changed while it was applied; send it again.', { headers: { 'Retry-After': '1' } })
    const recorded = parseRecord(key, blob.data, GrantRecordSchema)
    if (recorded.amount !== asked.amount || recorded.reason !== asked.reason) {
      throw new ApiError(422, 'grant_id_reused', 'This grant id was used for another amount or reason: reload the form for a new one.')
    }
    from = recorded.from
  }
  const op = `grant:${body.grantId}`
  const applied = await applyOnce(deps.store, deps.clock, account, new Set([op]), () => [{ type: 'grant', ...asked, jobId: null, clientJobId: null, kind: null, op }], {
    checkedUpTo: from,
  })
  return { account, balance: applied.account.record.balance, entry: LedgerEntrySchema.parse(applied.entry), replayed: applied.found }
}
