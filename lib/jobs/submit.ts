/**
 * Submitting a job: validate, take the resource lock, store the spec, start
 * the worker. Bad input is refused before anything is written.
 */
import { z } from 'zod'
import type { Deps } from '../core/deps.ts'
import { ApiError, type Issue, invalidRequest } from '../core/errors.ts'
import { acquireLock } from '../locks/lock.ts'
import { enterLine } from '../locks/enqueue.ts'
import { releaseAndStartNext } from './launch.ts'
import { markStarted } from './records.ts'
import { QueuePlaceSchema, queuePlace } from './queue-place.ts'
import { type ChargePlan, type StoredAccount, chargeJob, chargeRefused, planCharge } from '../credits/index.ts'
import { readSpec } from './state.ts'
import { UnsafeKeyError, keys, resourceKey } from '../storage/keys.ts'
import { StorageUnavailableError } from '../storage/port.ts'
import { JOB_STATUSES, type JobSpec } from '../core/types.ts'
import { isAbandoned, recordTakeover } from './takeover.ts'
import { type PublicJob, Timestamp, jobUrls, publicJob } from './views.ts'
import { type KeyClaim, bindIdempotencyKey, claimIdempotencyKey, findReplay, idempotencyRecordKey, releaseIdempotencyKey } from './idempotency.ts'
import { dispatchJob, failUndispatched } from './dispatch.ts'
import { takeAccountTurn } from './account-turn.ts'
import { DelayFieldsSchema, startTimeOf, waitingGuardAt } from '../schedule/delay.ts'
import { addDue } from '../schedule/due-index.ts'
import { resolveRetryPolicy } from '../kinds/retry.ts'
import { MAX_WEBHOOK_URL_LENGTH, checkWebhookUrl } from '../webhooks/target.ts'
import { handOnStale } from './launch.ts'

const ClientIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'use 1-128 characters of A-Z a-z 0-9 . _ : -')

export const SubmitBodySchema = z.strictObject({
  kind: z.string().min(1).max(40),
  input: z.record(z.string(), z.unknown()),
  sourceTaskId: ClientIdSchema.optional(),
  clientJobId: ClientIdSchema.optional(),
  /** While another job holds the resource: "refuse" (409) or "queue" (wait in line); the kind's choice by default. */
  onBusy: z.enum(['queue', 'refuse']).optional(),
  ...DelayFieldsSchema,
  /** Where to POST the job's outcome when it ends (https; the account's default when absent). */
  webhookUrl: z.string().max(MAX_WEBHOOK_URL_LENGTH).optional(),
})


/** What a submit answers (202, or 200 for a replayed Idempotency-Key). */
export const SubmittedBodySchema = z.strictObject({
  jobId: z.string(),
  kind: z.string(),
  /** "queued", or the job's own status if its worker already started it. */
  status: z.enum(JOB_STATUSES),
  statusUrl: z.string(),
  eventsUrl: z.string(),
  createdAt: Timestamp,
  /** Queued behind a busy resource: its place in the resource's line. */
  queue: QueuePlaceSchema.optional(),
})

export interface Submitted {
  status: 202 | 200
  replayed: boolean
  body: z.infer<typeof SubmittedBodySchema>
}

export function zodIssues(error: z.ZodError, prefix: (string | number)[] = []): Issue[] {
  return error.issues.map((issue) => ({
    path: [...prefix, ...issue.path].map(String).join('.') || '(body)',
    message: issue.message,
  }))
}

export async function submitJob(
  deps: Deps,
  account: string,
  body: unknown,
  idempotencyKey: string | null,
  /** The caller's account record, when authentication read it: a charged submit then reads it no more. */
  options: { accountRead?: StoredAccount | null; idempotencyNamespace?: string | null } = {},
): Promise<Submitted> {
  const parsed = SubmitBodySchema.safeParse(body)
  if (!parsed.success) throw invalidRequest('The request body is not a valid job submission.', zodIssues(parsed.error))
  const { kind: kindName, sourceTaskId = null, clientJobId = null } = parsed.data
  const kind = deps.kinds.get(kindName)
  if (!kind) {
    throw new ApiError(400, 'unknown_kind', `There is no job kind "${kindName}".`, {
      extra: { kinds: [...deps.kinds.keys()] },
    })
  }
  const input = kind.input.safeParse(parsed.data.input)
  if (!input.success) throw invalidRequest(`The input is not valid for "${kindName}".`, zodIssues(input.error, ['input']))
  /** A delayed start: the job takes its lock and its worker when the dispatcher starts it. */
  const runAt = startTimeOf(parsed.data, deps.clock.now())
  const policy = { allowPrivateTargets: deps.settings.webhookAllowPrivateTargets }
  const webhookUrl =
    parsed.data.webhookUrl !== undefined ? checkWebhookUrl(parsed.data.webhookUrl, policy) : (options.accountRead?.record.webhookUrl ?? undefined)
  const onBusy = parsed.data.onBusy ?? kind.onBusy ?? 'refuse'

  const jobId = deps.ids('job')
  let lockKey: string | null = null
  try {
    const parts = kind.lockKey?.(input.data, account, { sourceTaskId }) ?? null
    if (parts) lockKey = resourceKey(parts)
  } catch (error) {
    if (error instanceof UnsafeKeyError) throw invalidRequest(error.message, [{ path: 'input', message: error.message }])
    throw error
  }

  const idempotencyStorageKey = idempotencyKey === null ? null : idempotencyRecordKey(account, idempotencyKey, options.idempotencyNamespace ?? null)
  const cost = kind.cost ?? 0
  // Decided before anything is written, so a job the balance cannot cover writes nothing.
  let charge: ChargePlan
  try {
    charge = await planCharge(deps.store, deps.clock, { account, jobId, kind: kindName, cost, clientJobId }, options.accountRead)
  } catch (error) {
    // A retry of a request that already made its job is answered with that job, whatever the balance is now.
    const replay = idempotencyStorageKey && error instanceof ApiError ? await findReplay(deps, idempotencyStorageKey, parsed.data) : null
    if (replay) return replayOf(replay)
    throw error
  }

  let submitted!: JobSpec
  let claim: KeyClaim | null = null
  if (idempotencyStorageKey !== null) {
    const claimed = await claimIdempotencyKey(deps, idempotencyStorageKey, jobId, parsed.data)
    if ('replay' in claimed) return replayOf(claimed.replay)
    claim = claimed.claim
  }

  let specCreated = false
  /** The spec write was sent: if it threw, it may still have landed. */
  let specSent = false
  let lockTaken = false
  /** The resource is busy and this job waits in its line (spec in `waiting/`). */
  let waitInLine = false
  /** Under ACCOUNT_MAX_RUNNING a job starts only with a slot of its account: it is filed as waiting until it has one. */
  const usesAccountSlot = deps.settings.accountMaxRunning !== null
  /** Its account is at its limit: the job waits in the account's line. */
  let waitForAccount = false
  const canTakeOver = (holder: { jobId: string; acquiredAt: number }) => isAbandoned(deps, holder)
  try {
    if (lockKey && runAt === null) {
      let lock = await acquireLock(deps.store, deps.clock, lockKey, jobId, deps.settings.lockTtlMs, { canTakeOver })
      // Refused because jobs wait in the resource's line: if the holder is gone (expired, or its
      // submit died) and no guard of a waiting job is left to notice (they were canceled), the
      // line would block the resource for good. Hand it on (or free it) here, then ask again.
      const stale = lock.acquired ? null : await handOnStale(deps, lockKey, canTakeOver, (taken) => recordTakeover(deps, taken.tookOverFrom, taken.handedTo ?? jobId))
      if (stale) lock = await acquireLock(deps.store, deps.clock, lockKey, jobId, deps.settings.lockTtlMs, { canTakeOver })
      if (!lock.acquired && onBusy === 'queue') waitInLine = true
      else if (!lock.acquired) {
        const urls = jobUrls(lock.holder.jobId)
        // Name the holder only when the resource is this account's own, so a
        // kind with a shared resource never reveals another account's job.
        const ownResource = lockKey.startsWith(`${account}:`)
        throw new ApiError(409, 'resource_locked', 'Another job is already working on this resource.', {
          extra: !ownResource ? {} : {
            holder: {
              jobId: lock.holder.jobId,
              statusUrl: urls.statusUrl,
              eventsUrl: urls.eventsUrl,
              // A holder waiting for its account's slot keeps the lock until it starts, then for one TTL.
              expiresAt: new Date(lock.holder.waitsForAccount ? Math.max(lock.holder.expiresAt, deps.clock.now() + deps.settings.lockTtlMs) : lock.holder.expiresAt).toISOString(),
            },
          },
        })
      }
      else {
        lockTaken = true
        if (lock.tookOverFrom) await recordTakeover(deps, lock.tookOverFrom, jobId)
      }
    }
    const spec: JobSpec = {
      jobId,
      account,
      kind: kindName,
      input: input.data,
      createdAt: deps.clock.now(),
      lockKey,
      sourceTaskId,
      clientJobId,
      idempotencyRecord: claim?.key ?? null,
      creditCharged: charge.amount,
      reservation: charge.reservation,
      creditBasis: charge.basis,
      ...(runAt === null ? {} : { runAt }),
      maxAttempts: resolveRetryPolicy(kind.retry).maxAttempts,
      ...(webhookUrl === undefined ? {} : { webhookUrl }),
      ...(onBusy === 'queue' ? { onBusy } : {}),
      ...(usesAccountSlot ? { usesAccountSlot: true as const } : {}),
    }
    // Only while the key is still this request's: one that took it over meanwhile makes the job instead.
    if (claim) await bindIdempotencyKey(deps.store, claim)
    submitted = spec
    const waits = runAt !== null || waitInLine || usesAccountSlot
    if (waits) await addDue(deps.store, waitingGuardAt(spec.createdAt), 'guard', jobId)
    specSent = true
    const specKey = waits ? keys.waitingSpec(jobId) : keys.spec(jobId)
    const created = await deps.store.create(specKey, JSON.stringify(spec))
    if (!created.ok) throw new Error(`job id ${jobId} already exists`)
    specCreated = true
    // After the spec: whoever settles the job finds by content whether this charge landed.
    const { paid } = await chargeJob(deps.store, deps.clock, charge)
    // Charged while another submit of its client job id made the reservation: the charge came back.
    let specVersion = created.version
    if (paid !== spec.creditCharged) {
      const patched = await deps.store.replace(specKey, JSON.stringify({ ...spec, creditCharged: paid }), created.version)
      if (patched.ok) {
        submitted = { ...spec, creditCharged: paid }
        specVersion = patched.version
      }
    }
    /** The job holds its resource (or needs none): it starts now, unless its account makes it wait. */
    const startUnlessAccountWaits = async () => {
      const turn = await takeAccountTurn(deps, submitted, specVersion)
      if (!turn.admitted) {
        waitForAccount = true
        submitted = { ...submitted, accountSeq: turn.seq }
        return
      }
      const started = await markStarted(deps, submitted, deps.clock.now())
      if (!started) throw new Error(`job ${jobId} was started by another handling while its submit was running`)
      submitted = started
    }
    // Last: once it is filed the dispatcher may start the job, so the spec must be final.
    if (runAt !== null) {
      await addDue(deps.store, runAt, 'start', jobId)
      // For its guard: this submit got through (refused when its start already moved the spec on).
      // Without the mark a guard may fail the job once its start entry was filed again elsewhere, so
      // a mark that cannot be written fails the submit (the job is failed and refunded), never a 202.
      const marked = { ...submitted, startFiled: true as const }
      for (let attempt = 1; ; attempt++) {
        try {
          if ((await deps.store.replace(specKey, JSON.stringify(marked), specVersion)).ok) submitted = marked
          break
        } catch (error) {
          if (attempt >= 3 || !(error instanceof StorageUnavailableError)) throw error
        }
      }
    } else if (!waitInLine && usesAccountSlot) await startUnlessAccountWaits()
    if (waitInLine) {
      const place = await enterLine(deps.store, deps.clock, lockKey!, jobId, deps.settings.lockTtlMs, { canTakeOver })
      if (place.acquired) {
        // Free after all: the job starts now, as if it had not waited.
        lockTaken = true
        if (place.tookOverFrom) await recordTakeover(deps, place.tookOverFrom, jobId)
        waitInLine = false
        await startUnlessAccountWaits()
      } else {
        // Its place, for its status; a hand-off may have started it already (then the waiting copy is gone).
        const queued = { ...submitted, queueSeq: place.seq }
        if ((await deps.store.replace(specKey, JSON.stringify(queued), specVersion)).ok) submitted = queued
      }
    }
  } catch (error) {
    // Undo what this submit did, so a refused or failed submit leaves nothing behind.
    // A job that exists is failed and settled, which returns a charge that landed (and only then).
    // So is one whose spec write threw but landed (nothing was charged for it yet): read to know.
    let exists: boolean | null = specCreated
    if (!specCreated && specSent && error instanceof StorageUnavailableError) {
      exists = await readSpec(deps.store, jobId).then((found) => found !== null, () => null)
    }
    let undone = exists === false
    if (exists) {
      const unpaid = !specCreated || chargeRefused(error)
      undone = (await failUndispatched(deps, unpaid ? { ...submitted, creditCharged: 0, reservation: null } : submitted, error)).outcome === 'failed'
    }
    if (lockTaken && lockKey) await releaseAndStartNext(deps, lockKey, jobId).catch(() => {})
    // A job that may exist and could not be failed keeps the key: a retry is answered with it, not given a second job.
    if (claim && undone) await releaseIdempotencyKey(deps.store, deps.clock, claim).catch(() => {})
    throw error
  }
  const spec = submitted
  if (runAt !== null) return accepted(publicJob({ spec }))
  if (waitInLine || waitForAccount) return accepted(publicJob({ spec, queue: await queuePlace(deps, spec).catch(() => null) }))

  const dispatch = await dispatchJob(deps, spec)
  if (dispatch.outcome === 'started') return accepted(publicJob({ spec }))
  if (dispatch.outcome === 'claimed') return accepted(publicJob({ state: dispatch.state }))
  // Neither failed nor claimed as far as we can tell: the job stands, and either a worker runs it
  // or the reaper fails and refunds it. A 503 would make a client without a key pay twice.
  if (dispatch.outcome === 'unknown') return accepted(publicJob({ spec }))
  // The job failed here and never ran: the key is freed, so the retry we ask for is a new attempt.
  if (claim) await releaseIdempotencyKey(deps.store, deps.clock, claim).catch(() => {})
  throw new ApiError(503, 'worker_unavailable', 'The job could not be started. Try again shortly.', {
    headers: { 'Retry-After': '5' },
  })
}

const accepted = (job: PublicJob): Submitted => ({ status: 202, replayed: false, body: answerOf(job) })
const replayOf = (job: PublicJob): Submitted => ({ status: 200, replayed: true, body: answerOf(job) })
const answerOf = (job: PublicJob): Submitted['body'] => ({
  jobId: job.jobId,
  kind: job.kind,
  status: job.status,
  statusUrl: job.statusUrl,
  eventsUrl: job.eventsUrl,
  createdAt: job.createdAt,
  ...(job.queue ? { queue: job.queue } : {}),
})
