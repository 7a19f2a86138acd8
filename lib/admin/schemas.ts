/**
 * Requests and answers of the operator console's routes, as zod schemas: the
 * routes parse with them, and an API description can register them as they are.
 */
import { z } from 'zod'
import { ApiError, invalidRequest } from '../core/errors.ts'
import { JOB_ID_PATTERN } from '../core/ids.ts'
import { JOB_STATUSES, PublicErrorSchema } from '../core/types.ts'
import { DeliveryViewSchema } from '../webhooks/delivery.ts'

const jobId = JOB_ID_PATTERN.source.slice(1, -1)
/** Where a search page goes on: `live.<job>` (live jobs older than it) or `done.<bucket>.<job|top>` (finished ones). */
export const SEARCH_CURSOR = new RegExp(`^(live\\.${jobId}|done\\.\\d{1,12}\\.(top|${jobId}))$`)
/** A grant id made by the console for one grant: `grant_` + its time in base36 + 128 random bits in hex. */
export const GRANT_ID_PATTERN = /^grant_([0-9a-z]{8,11})([0-9a-f]{32})$/
/** Most jobs a search page returns. */
export const MAX_SEARCH_LIMIT = 100
/** Most timeline events per detail request. */
export const MAX_TIMELINE_LIMIT = 200
/** Largest grant the console makes at once. */
export const MAX_GRANT = 1_000_000

/** Query values arrive as strings; an empty one (an unset form field) means absent. */
const optional = <T extends z.ZodType>(schema: T) => z.preprocess((value) => (value === '' ? undefined : value), schema.optional())
const whole = (min: number, max: number, fallback: number) =>
  z.preprocess((value) => (value === undefined || value === '' ? fallback : /^\d{1,9}$/.test(String(value)) ? Number(value) : Number.NaN), z.number().int().min(min).max(max))

export const SearchQuerySchema = z.strictObject({
  status: optional(z.enum(JOB_STATUSES)),
  kind: optional(z.string().regex(/^[a-z][a-z0-9_-]{0,39}$/, 'a job kind: a-z 0-9 _ -')),
  account: optional(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'an account name')),
  cursor: optional(z.string().regex(SEARCH_CURSOR, 'the "next" of the previous page')),
  limit: whole(1, MAX_SEARCH_LIMIT, 25),
})
export type SearchQuery = z.infer<typeof SearchQuerySchema>

export const DetailQuerySchema = z.strictObject({
  /** Timeline events after this seq. */
  after: whole(0, 999_999_999, 0),
  limit: whole(1, MAX_TIMELINE_LIMIT, 100),
})
export type DetailQuery = z.infer<typeof DetailQuerySchema>

export const GrantBodySchema = z.strictObject({
  /** Made by the console when the form is shown, so a double click or a retry grants once. */
  grantId: z.string().regex(GRANT_ID_PATTERN, 'grant_ + time in base36 + 32 hex digits'),
  amount: z.number().int().min(1).max(MAX_GRANT),
  reason: z.string().trim().min(1).max(200).default('granted by operator'),
})
export type GrantBody = z.infer<typeof GrantBodySchema>

/** A job as the operator sees it (jobs/views.ts `operatorJob`). */
export const OperatorJobSchema = z.object({
  jobId: z.string(),
  account: z.string(),
  kind: z.string(),
  status: z.enum(JOB_STATUSES),
  attempt: z.number(),
  maxAttempts: z.number(),
  /** While `retrying`: when the next attempt is due. */
  nextAttemptAt: z.string().nullable(),
  cancelRequested: z.boolean(),
  progress: z.object({ message: z.string(), percent: z.number().nullable() }).nullable(),
  hasResult: z.boolean(),
  error: PublicErrorSchema.nullable(),
  error_internal: z.string().nullable(),
  lockKey: z.string().nullable(),
  createdAt: z.string().nullable(),
  startedAt: z.string().nullable(),
  updatedAt: z.string().nullable(),
  heartbeatAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  lastSeq: z.number(),
  firstSeq: z.number(),
  sourceTaskId: z.string().nullable(),
  clientJobId: z.string().nullable(),
  creditCharged: z.number(),
  reservation: z.string().nullable(),
})

export const SearchPageSchema = z.object({
  jobs: z.array(OperatorJobSchema),
  /** Pass as `cursor` for the next, older page; null when nothing older is left. */
  next: z.string().nullable(),
  /** Jobs looked at for this page (matching or not), so a filter that matches little says so. */
  examined: z.number(),
  /** Index records named on this page whose job is gone (retention) or unreadable. */
  skipped: z.number(),
})
export type SearchPage = z.infer<typeof SearchPageSchema>

const LedgerEntryView = z.object({ seq: z.number(), type: z.string(), ts: z.number(), data: z.record(z.string(), z.unknown()) })

export const JobDetailSchema = z.object({
  job: OperatorJobSchema,
  /** One per run of the job; retries will add more. */
  attempts: z.array(z.object({ attempt: z.number(), startedAt: z.string().nullable(), heartbeatAt: z.string().nullable(), endedAt: z.string().nullable(), outcome: z.string() })),
  timeline: z.object({
    events: z.array(z.object({ seq: z.number(), type: z.string(), data: z.unknown(), ts: z.number() })),
    next: z.number(),
    firstSeq: z.number(),
    lastSeq: z.number(),
    /** Set when the log cap dropped events the request asked for. */
    droppedBefore: z.number().nullable(),
  }),
  lock: z
    .object({ resource: z.string(), state: z.string(), holder: z.string().nullable(), heldByThisJob: z.boolean(), acquiredAt: z.string().nullable(), expiresAt: z.string().nullable(), expired: z.boolean() })
    .nullable(),
  charge: z.object({
    creditCharged: z.number(),
    clientJobId: z.string().nullable(),
    creditBasis: z.number().nullable(),
    refundFrom: z.number().nullable(),
    /** Ledger entries naming this job (or its client job id), from the bounded windows in `searched`. */
    entries: z.array(LedgerEntryView),
    searched: z.array(z.object({ after: z.number(), upTo: z.number() })),
    reservation: z.record(z.string(), z.unknown()).nullable(),
  }),
  assets: z.array(z.record(z.string(), z.unknown())),
  /** The job's webhook deliveries (null when it has no webhook): attempts, outcome, next try. */
  webhook: DeliveryViewSchema.nullable(),
  /** What the console may offer: `retry` runs a failed job again, as a new job (its input is kept until retention). */
  actions: z.object({ cancel: z.boolean(), retry: z.boolean() }),
})
export type JobDetail = z.infer<typeof JobDetailSchema>

export const GrantResultSchema = z.object({
  account: z.string(),
  balance: z.number(),
  entry: LedgerEntryView,
  /** True when this grant id had already been applied: nothing was added now. */
  replayed: z.boolean(),
})

export const SummarySchema = z.object({
  from: z.string(),
  to: z.string(),
  hours: z.number(),
  counts: z.record(z.string(), z.number()),
  live: z.number(),
  /** Upper bounds of duration buckets; null is "longer than the largest bound". */
  durations: z.array(z.object({ kind: z.string(), count: z.number(), p50Ms: z.number().nullable(), p95Ms: z.number().nullable() })),
  failures: z.array(z.object({ code: z.string(), count: z.number() })),
  /** Rollup records read (hours × shards), and those that could not be parsed. */
  reads: z.number(),
  unreadable: z.number(),
})
export type Summary = z.infer<typeof SummarySchema>

export const OverviewSchema = z.object({
  locks: z.array(z.object({ resource: z.string(), jobId: z.string(), acquiredAt: z.string(), expiresAt: z.string(), expired: z.boolean() })),
  /** More live jobs than the locks shown. */
  locksTruncated: z.boolean(),
  unreadable: z.array(z.object({ record: z.string() })),
  accounts: z.array(z.object({ account: z.string(), balance: z.number(), ledgerEntries: z.number() })),
})

/** Parses a query string with `schema`; anything wrong or unknown is a 400 naming the parameter. */
export function parseQuery<T extends z.ZodType>(schema: T, params: URLSearchParams): z.infer<T> {
  return parseWith(schema, Object.fromEntries(params), 'query')
}

export function parseBody<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  return parseWith(schema, body, 'body')
}

function parseWith<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  const parsed = schema.safeParse(value)
  if (parsed.success) return parsed.data
  const issues = parsed.error.issues.map((issue) => ({
    path: [where, ...issue.path.map(String), ...(issue.code === 'unrecognized_keys' ? [issue.keys.join(',')] : [])].join('.'),
    message: issue.message,
  }))
  throw invalidRequest(`Check ${issues.map((issue) => issue.path).join(', ')}.`, issues)
}

/** 401 for anything but the operator's token; says which token, unlike the API's 401. */
export const adminUnauthorized = () =>
  new ApiError(401, 'unauthorized', 'This route takes the admin token: send ADMIN_TOKEN as "Authorization: Bearer <token>".', {
    headers: { 'WWW-Authenticate': 'Bearer' },
  })
