/**
 * Records this product keeps, as zod schemas (every record read back from
 * storage is parsed, never trusted) and the types derived from them.
 *
 * Glossary
 * - job: one piece of long work of a kind, for one account.
 * - spec: what submit stored for the worker: kind, input, who asked. Lives at
 *   `queue/<jobId>` while the job is live, which makes it the live-job index.
 * - state: the job's one mutable record (`job/<jobId>`): status, progress,
 *   newest events, lease. Created when a worker claims the job (or cancel
 *   wins the race), so "no state yet" means queued.
 * - attempt / lease: a worker's claim on a job. The lease token is the
 *   fencing token: a write made under any other token is refused. A kind with
 *   a retry policy may have several attempts, one at a time, under one lock.
 * - lock: at most one live job per resource, `lock/<resource key>`.
 * - event: `{ seq, type, data, ts }`, appended to the job's log; seq starts
 *   at 1 and has no gaps.
 * - cursor: the last seq a reader has seen (`after`).
 * - client job id: the caller's own id for one piece of user-visible work.
 * - step: a named part of a job's handler (`ctx.step`) whose result is
 *   stored once, under `steps/<jobId>/`, and returned instead of run again.
 * - invocation / continuation: one run of the background function. A job
 *   near the invocation limit hands itself over, between two steps, to a
 *   fresh invocation, which claims it and goes on (jobs/continuation.ts).
 */
import { z } from 'zod'

/**
 * `scheduled`: submitted with a start time that has not come yet (see schedule/start.ts).
 * `retrying`: an attempt failed and the next one waits for `nextAttemptAt` (see jobs/retry.ts).
 */
export const JOB_STATUSES = ['scheduled', 'queued', 'running', 'retrying', 'complete', 'failed', 'canceled'] as const
export type JobStatus = (typeof JOB_STATUSES)[number]
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['complete', 'failed', 'canceled'])
export const isTerminal = (status: JobStatus) => TERMINAL_STATUSES.has(status)

export const TERMINAL_EVENT_TYPES: ReadonlySet<string> = new Set(['done', 'error', 'canceled'])

export const PublicErrorSchema = z.object({ code: z.string(), message: z.string() })
export type PublicError = z.infer<typeof PublicErrorSchema>

export const JobEventSchema = z.object({
  seq: z.number().int().positive(),
  type: z.string(),
  data: z.unknown(),
  ts: z.number(),
})
export type JobEvent = z.infer<typeof JobEventSchema>

export const JobSpecSchema = z.object({
  jobId: z.string(),
  account: z.string(),
  kind: z.string(),
  input: z.unknown(),
  createdAt: z.number(),
  /** The resource lock this job holds while live; null for kinds without one. */
  lockKey: z.string().nullable(),
  sourceTaskId: z.string().nullable(),
  clientJobId: z.string().nullable(),
  /** Storage key of the Idempotency-Key record that created it, removed with the job. */
  idempotencyRecord: z.string().nullable(),
  /** Credits this job pays (0 when its reservation covers it), and the reservation blob it joins. */
  creditCharged: z.number().int().nonnegative(),
  reservation: z.string().nullable(),
  /** The ledger seq its charge was based on: the charge entry, if it landed, comes after (absent before this existed). */
  creditBasis: z.number().int().nonnegative().optional(),
  /** A delayed start: the job waits, holding no lock, until the dispatcher starts it at this time. */
  runAt: z.number().optional(),
  /** Where to POST the job's outcome when it ends (see webhooks/delivery.ts). */
  webhookUrl: z.string().optional(),
  /**
   * Set by the submit of a delayed job once its start entry is filed, before it answers 202: its
   * guard leaves it to that entry (which may have failed and been filed again under another time).
   */
  startFiled: z.literal(true).optional(),
  /** Set (conditionally, once) when the dispatcher starts a delayed job. */
  dispatchedAt: z.number().optional(),
  /** Attempts the kind's retry policy allowed at submit (absent: the kind's policy when it runs). */
  maxAttempts: z.number().int().positive().optional(),
  /** 'queue': wait in the resource's line when it is busy, instead of being refused. */
  onBusy: z.enum(['queue', 'refuse']).optional(),
  /** Its place in the resource's line (locks/line.ts) while it waits there. */
  queueSeq: z.number().int().nonnegative().optional(),
  /** Submitted under ACCOUNT_MAX_RUNNING: it starts only with one of its account's slots (locks/slots.ts). */
  usesAccountSlot: z.literal(true).optional(),
  /** Its place in its account's line while it waits for a slot. */
  accountSeq: z.number().int().nonnegative().optional(),
})
export type JobSpec = z.infer<typeof JobSpecSchema>

/** Where the event log stands; see `events/log.ts` for the layout. */
export const LogPositionSchema = z.object({
  /** Oldest seq still readable (the cap drops whole pages from the front). */
  firstSeq: z.number().int().positive(),
  /** Every seq up to this one is in chunk blobs. */
  flushedSeq: z.number().int().nonnegative(),
  lastSeq: z.number().int().nonnegative(),
  /** Events after `flushedSeq`: one chunk at most, plus the events of the last append. */
  tail: z.array(JobEventSchema),
  /** A finished log whose last page is written too (see planSeal). */
  sealed: z.boolean().optional(),
})
export type LogPosition = z.infer<typeof LogPositionSchema>

/** A file a job saved (see `assets/assets.ts`), as the job lists it. */
export const JobAssetSchema = z.object({
  assetId: z.string(),
  filename: z.string(),
  contentType: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string(),
  url: z.string(),
})
export type JobAsset = z.infer<typeof JobAssetSchema>

export const JobStateSchema = z.object({
  jobId: z.string(),
  account: z.string(),
  kind: z.string(),
  status: z.enum(JOB_STATUSES),
  createdAt: z.number(),
  startedAt: z.number().nullable(),
  updatedAt: z.number(),
  finishedAt: z.number().nullable(),
  heartbeatAt: z.number().nullable(),
  lease: z.string().nullable(),
  attempt: z.number().int().nonnegative(),
  /** Attempts this job may have in all (absent in records from before retries: 1). */
  maxAttempts: z.number().int().positive().optional(),
  /** While `retrying`: when the next attempt is due. Kept on a job canceled while waiting. */
  nextAttemptAt: z.number().nullable().optional(),
  cancelRequested: z.boolean(),
  progress: z.object({ message: z.string(), percent: z.number().nullable() }).nullable(),
  result: z.unknown().optional(),
  error: PublicErrorSchema.nullable(),
  errorInternal: z.string().nullable(),
  /** The resource lock this job holds while live; null for kinds without one. */
  lockKey: z.string().nullable(),
  sourceTaskId: z.string().nullable(),
  clientJobId: z.string().nullable(),
  idempotencyRecord: z.string().nullable(),
  creditCharged: z.number().int().nonnegative(),
  reservation: z.string().nullable(),
  creditBasis: z.number().int().nonnegative().optional(),
  /** The start time a delayed job asked for. */
  runAt: z.number().optional(),
  webhookUrl: z.string().optional(),
  /**
   * The reservation (by its `createdAt`) whose payments this job's charge joined, recorded by its
   * settling before it marks itself ended there: a later settling that finds the reservation
   * removed or replaced by a newer one knows the charge went with it, and is not its own to refund.
   */
  reservedIn: z.number().optional(),
  /** Set once a refund of its own charge is pending: the ledger seq the refund is searched from. */
  refundFrom: z.number().int().nonnegative().nullable().optional(),
  /** Token of the last worker write, to recognise one that landed despite an error. */
  writeToken: z.string().optional(),
  /**
   * Set while a running job is between two invocations (jobs/continuation.ts):
   * when its worker handed it over. The lease is null then; the next
   * invocation claims the job by clearing this.
   */
  handedOverAt: z.number().nullable().optional(),
  /** The invocation of the current attempt running the job: 1, then one more per continuation. */
  invocation: z.number().int().positive().optional(),
  /** It counts against its account's limit of running jobs: settling it gives its slot back. */
  usesAccountSlot: z.literal(true).optional(),
  /** Steps (`ctx.step`) this job stored; set before its first step runs, so retention knows to delete them. */
  stepsCompleted: z.number().int().nonnegative().optional(),
  /** Files saved inside a step, by asset id: the step that saved each. They stay across a retry while that step is stored. */
  assetSteps: z.record(z.string(), z.string()).optional(),
  /** Files the job saved, in order. Defaulted so records written before assets existed still parse. */
  assets: z.array(JobAssetSchema).default([]),
  log: LogPositionSchema,
})
export type JobState = z.infer<typeof JobStateSchema>

/** A resource's line of waiting jobs (see locks/line.ts): entries head ≤ seq < tail. */
const LockLineSchema = z.object({ head: z.number().int().nonnegative(), tail: z.number().int().nonnegative() })

export const LockRecordSchema = z.discriminatedUnion('state', [
  z.object({
    state: z.literal('held'),
    jobId: z.string(),
    acquiredAt: z.number(),
    expiresAt: z.number(),
    line: LockLineSchema.optional(),
    /** Its job waits for a slot of its account (locks/slots.ts): the lock does not expire until the job starts or ends. */
    waitsForAccount: z.literal(true).optional(),
  }),
  z.object({ state: z.literal('released'), jobId: z.string(), releasedAt: z.number(), line: LockLineSchema.optional() }),
  /** Set by the reaper just before it deletes a long-released lock; see lock.ts. */
  z.object({ state: z.literal('reaping'), since: z.number() }),
])
export type LockRecord = z.infer<typeof LockRecordSchema>

export const ApiKeyRecordSchema = z.object({
  account: z.string(),
  label: z.string(),
  createdAt: z.number(),
})
export type ApiKeyRecord = z.infer<typeof ApiKeyRecordSchema>

const IdempotencyClaimFields = {
  jobId: z.string(),
  requestHash: z.string(),
  createdAt: z.number(),
  expiresAt: z.number(),
}

/**
 * An Idempotency-Key's record (see `jobs/idempotency.ts`): `pending` while its
 * submit works, `bound` once that submit may write the job, `reaping` just
 * before it is deleted.
 * A record without `state` predates the states and counts as `bound`.
 */
export const IdempotencyRecordSchema = z.preprocess(
  (raw) => (raw && typeof raw === 'object' && !('state' in raw) ? { ...raw, state: 'bound' } : raw),
  z.discriminatedUnion('state', [
    z.object({ state: z.literal('pending'), ...IdempotencyClaimFields }),
    z.object({ state: z.literal('bound'), ...IdempotencyClaimFields }),
    z.object({ state: z.literal('reaping'), since: z.number() }),
  ]),
)
export type IdempotencyRecord = z.infer<typeof IdempotencyRecordSchema>
