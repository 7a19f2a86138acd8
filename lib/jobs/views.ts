/**
 * How jobs look from outside: to their clients, and to operators. Each view
 * has its zod schema here; the OpenAPI document is generated from them and
 * the views are typed by them, so the two cannot drift apart.
 */
import { z } from 'zod'
import { iso } from '../core/clock.ts'
import { JOB_STATUSES, JobAssetSchema, JobEventSchema, type JobSpec, type JobState, PublicErrorSchema } from '../core/types.ts'
import type { AssetRecord } from '../assets/record.ts'
import { type QueuePlace, QueuePlaceSchema } from './queue-place.ts'

/** A time as the API shows it: ISO 8601 in UTC, with milliseconds. */
export const Timestamp = z.iso.datetime()

export const jobUrls = (jobId: string) => ({
  statusUrl: `/api/jobs/${jobId}`,
  eventsUrl: `/api/jobs/${jobId}/events`,
  cancelUrl: `/api/jobs/${jobId}/cancel`,
})

export const PublicJobSchema = z.strictObject({
  jobId: z.string(),
  kind: z.string(),
  status: z.enum(JOB_STATUSES),
  cancelRequested: z.boolean(),
  progress: z.strictObject({ message: z.string(), percent: z.number().min(0).max(100).nullable() }).nullable(),
  /** The handler's result, present once the job is complete. */
  result: z.unknown().optional(),
  /** The public error when failed, or of the last attempt while `retrying`: never the internal text. */
  error: PublicErrorSchema.nullable(),
  /** The attempt running or last run: 0 before the first. */
  attempt: z.number().int().nonnegative(),
  /** Attempts the job may have in all: its kind's retry policy, 1 without one. */
  maxAttempts: z.number().int().positive(),
  /** While `retrying`: when the next attempt is due; null otherwise. */
  nextAttemptAt: Timestamp.nullable(),
  createdAt: Timestamp,
  startedAt: Timestamp.nullable(),
  updatedAt: Timestamp,
  finishedAt: Timestamp.nullable(),
  lastSeq: z.number().int().nonnegative(),
  statusUrl: z.string(),
  eventsUrl: z.string(),
  sourceTaskId: z.string().nullable(),
  clientJobId: z.string().nullable(),
  /** Credits this job was charged: 0 when an earlier job with the same clientJobId paid. */
  creditCharged: z.number().int().nonnegative(),
  /** Files the job saved so far, with their download URLs. */
  assets: z.array(JobAssetSchema),
  /** A delayed job's start time (`runAt` or `delaySeconds` at submit); absent for the others. */
  runAt: Timestamp.optional(),
  /** A job `queued` behind a busy resource (`onBusy: "queue"`): its place in the resource's line. */
  queue: QueuePlaceSchema.optional(),
  /**
   * A job whose kind uses durable steps: the steps stored so far, and the
   * invocation of the current attempt (1, then one more each time the job
   * was continued in a fresh invocation).
   */
  steps: z.strictObject({ completed: z.number().int().nonnegative(), invocation: z.number().int().positive() }).optional(),
})
export type PublicJob = z.infer<typeof PublicJobSchema>

/** The event feed of one job (`GET /api/jobs/:id/events`). */
export const FeedSchema = z.strictObject({
  jobId: z.string(),
  status: z.enum(JOB_STATUSES),
  events: z.array(JobEventSchema),
  /** Pass as `after` to get only what is new. */
  next: z.number().int().nonnegative(),
  /** The job is finished and every event was read. */
  done: z.boolean(),
  /** Oldest seq still kept; events before it were dropped by the log cap. */
  firstSeq: z.number().int().positive(),
  /** Set when events after the reader's cursor were dropped before it could read them. */
  truncated: z.strictObject({ droppedBefore: z.number().int().positive() }).optional(),
})

/** A job with no state yet: waiting for its time, or for its worker. */
export const specStatus = (spec: JobSpec) =>
  spec.runAt !== undefined && spec.dispatchedAt === undefined && spec.queueSeq === undefined && spec.accountSeq === undefined ? 'scheduled' : 'queued'

const runAtOf = (runAt: number | undefined) => (runAt === undefined ? {} : { runAt: iso(runAt)! })

/** The job as any client may see it: never the internal error, never the lease. */
export function publicJob(job: { spec: JobSpec; queue?: QueuePlace | null } | { state: JobState }): PublicJob {
  if ('spec' in job) {
    const { spec } = job
    return {
      jobId: spec.jobId,
      kind: spec.kind,
      status: specStatus(spec),
      cancelRequested: false,
      progress: null,
      error: null,
      attempt: 0,
      maxAttempts: spec.maxAttempts ?? 1,
      nextAttemptAt: null,
      createdAt: iso(spec.createdAt)!,
      startedAt: null,
      updatedAt: iso(spec.createdAt)!,
      finishedAt: null,
      lastSeq: 0,
      ...pick(jobUrls(spec.jobId)),
      sourceTaskId: spec.sourceTaskId,
      clientJobId: spec.clientJobId,
      creditCharged: spec.creditCharged,
      assets: [],
      ...runAtOf(spec.runAt),
      ...(job.queue ? { queue: job.queue } : {}),
    }
  }
  const { state } = job
  return {
    jobId: state.jobId,
    kind: state.kind,
    status: state.status,
    cancelRequested: state.cancelRequested,
    progress: state.progress,
    ...(state.status === 'complete' ? { result: state.result } : {}),
    error: state.error,
    attempt: state.attempt,
    maxAttempts: state.maxAttempts ?? 1,
    nextAttemptAt: state.status === 'retrying' ? iso(state.nextAttemptAt) : null,
    createdAt: iso(state.createdAt)!,
    startedAt: iso(state.startedAt),
    updatedAt: iso(state.updatedAt)!,
    finishedAt: iso(state.finishedAt),
    lastSeq: state.log.lastSeq,
    ...pick(jobUrls(state.jobId)),
    sourceTaskId: state.sourceTaskId,
    clientJobId: state.clientJobId,
    creditCharged: state.creditCharged,
    assets: state.assets,
    ...runAtOf(state.runAt),
    ...(state.stepsCompleted === undefined ? {} : { steps: { completed: state.stepsCompleted, invocation: state.invocation ?? 1 } }),
  }
}

const pick = ({ statusUrl, eventsUrl }: ReturnType<typeof jobUrls>) => ({ statusUrl, eventsUrl })

export const OperatorJobSchema = z.strictObject({
  jobId: z.string(),
  account: z.string(),
  kind: z.string(),
  status: z.enum(JOB_STATUSES),
  attempt: z.number().int().nonnegative(),
  maxAttempts: z.number().int().positive(),
  nextAttemptAt: Timestamp.nullable(),
  cancelRequested: z.boolean(),
  progress: PublicJobSchema.shape.progress,
  hasResult: z.boolean(),
  error: PublicErrorSchema.nullable(),
  error_internal: z.string().nullable(),
  lockKey: z.string().nullable(),
  createdAt: Timestamp,
  startedAt: Timestamp.nullable(),
  updatedAt: Timestamp,
  heartbeatAt: Timestamp.nullable(),
  finishedAt: Timestamp.nullable(),
  lastSeq: z.number().int().nonnegative(),
  firstSeq: z.number().int().positive(),
  sourceTaskId: z.string().nullable(),
  clientJobId: z.string().nullable(),
  creditCharged: z.number().int().nonnegative(),
  reservation: z.string().nullable(),
})
export type OperatorJob = z.infer<typeof OperatorJobSchema>

/** The operator's view: both error forms, lease and lock, whether a result exists. */
export function operatorJob(state: JobState): OperatorJob {
  return {
    jobId: state.jobId,
    account: state.account,
    kind: state.kind,
    status: state.status,
    attempt: state.attempt,
    maxAttempts: state.maxAttempts ?? 1,
    nextAttemptAt: state.status === 'retrying' ? iso(state.nextAttemptAt) : null,
    cancelRequested: state.cancelRequested,
    progress: state.progress,
    hasResult: state.result !== undefined,
    error: state.error,
    error_internal: state.errorInternal,
    lockKey: state.lockKey,
    createdAt: iso(state.createdAt)!,
    startedAt: iso(state.startedAt),
    updatedAt: iso(state.updatedAt)!,
    heartbeatAt: iso(state.heartbeatAt),
    finishedAt: iso(state.finishedAt),
    lastSeq: state.log.lastSeq,
    firstSeq: state.log.firstSeq,
    sourceTaskId: state.sourceTaskId,
    clientJobId: state.clientJobId,
    creditCharged: state.creditCharged,
    reservation: state.reservation,
  }
}

export const assetUrl = (assetId: string) => `/api/assets/${assetId}`

export const PublicAssetSchema = z.strictObject({
  assetId: z.string(),
  jobId: z.string(),
  sourceTaskId: z.string().nullable(),
  filename: z.string(),
  contentType: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string(),
  url: z.string(),
  createdAt: Timestamp,
  expiresAt: Timestamp,
})
export type PublicAsset = z.infer<typeof PublicAssetSchema>

/** A generated file as its account sees it in listings (with a signed link from `link`); never the account itself. */
export function publicAsset(record: AssetRecord, link: (assetId: string) => string = assetUrl): PublicAsset {
  return {
    assetId: record.assetId,
    jobId: record.jobId,
    sourceTaskId: record.sourceTaskId,
    filename: record.filename,
    contentType: record.contentType,
    bytes: record.bytes,
    sha256: record.sha256,
    url: link(record.assetId),
    createdAt: iso(record.createdAt)!,
    expiresAt: iso(record.expiresAt)!,
  }
}
