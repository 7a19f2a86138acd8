/** The job routes: submit, status, event feed, cancel. */
import { z } from 'zod'
import { IssueSchema, RETRY_AFTER, defineRoute } from '../openapi.ts'
import { FeedQuerySchema } from '../../jobs/read.ts'
import { SubmitBodySchema, SubmittedBodySchema } from '../../jobs/submit.ts'
import { FeedSchema, PublicJobSchema, Timestamp } from '../../jobs/views.ts'
import type { KindRegistry } from '../../kinds/define.ts'
import { WatchTokenFieldsSchema } from '../../tokens/mint.ts'

const JOB_ID = { id: 'The job id (`job_…`), as `POST /api/jobs` answered it.' }
const issues = { issues: z.array(IssueSchema).optional() }
/** The submit answer: the job, and a read-only token for it. */
const SubmittedWithTokenSchema = SubmittedBodySchema.extend(WatchTokenFieldsSchema.shape)
const ETAG = { description: 'A tag of this answer: send it back as `If-None-Match` to get 304 while nothing changed.', required: true }

/** The submit body with each kind's own input schema, so a client sees what every kind takes. */
const submitBody = (kinds: KindRegistry) => {
  const variants = [...kinds.values()].map((kind) => SubmitBodySchema.extend({ kind: z.literal(kind.kind), input: kind.input }))
  return variants.length >= 2 ? z.discriminatedUnion('kind', variants as [(typeof variants)[0], ...typeof variants]) : (variants[0] ?? SubmitBodySchema)
}

export const jobRoutes = [
  defineRoute({
    method: 'POST',
    path: '/api/jobs',
    operationId: 'submitJob',
    summary: 'Submit a job',
    description:
      'Validates the input against its kind, takes the resource lock, charges the account and starts a background worker. With `runAt` (an ISO time) or `delaySeconds` (1 to 604800) the job starts later, at most 7 days ahead: it is charged now and answers `scheduled`, holds no lock and can be canceled (refunded) until then; within a minute of its time it takes its lock and starts, or fails with `resource_locked` (refunded) if another job holds the resource. None of the 4xx answers writes anything. `GET /api/kinds` lists the kinds with their input schemas. Takes an API key, or a token whose scope submits this kind. The answer carries `watchToken`: a token that reads this job (status, events, stream, files) for an hour, and nothing else.',
    tags: ['jobs'],
    auth: 'caller',
    headers: {
      'Idempotency-Key': {
        description: 'Per account, 24 h: one key makes at most one job and one charge, however often the request is sent.',
        schema: z.string().regex(/^[\x21-\x7e]{1,255}$/),
      },
    },
    body: submitBody,
    responses: {
      202: { description: 'Accepted.', body: SubmittedWithTokenSchema, headers: { Location: { description: 'The job’s status URL.', required: true } } },
      200: {
        description: 'An earlier request with this Idempotency-Key made this job (the watch token is a fresh one).',
        body: SubmittedWithTokenSchema,
        headers: { Location: { description: 'The job’s status URL.', required: true }, 'Idempotent-Replayed': { description: '`true`', required: true } },
      },
      400: {
        description: 'Bad JSON, an unknown kind, input failing the kind’s schema, bad ids, a bad Idempotency-Key, or a start time in the past, more than 7 days ahead, or given both ways.',
        errors: ['invalid_request', 'unknown_kind'],
        extra: { ...issues, kinds: z.array(z.string()).optional() },
      },
      402: {
        description: 'The balance cannot cover what the job would pay.',
        errors: ['insufficient_credits'],
        extra: { balance: z.number().int(), cost: z.number().int() },
      },
      409: {
        description:
          '`resource_locked`: another live job holds the resource (`holder` names it when the resource is the caller’s own). `client_job_busy` or `idempotency_in_progress`: ask again after `Retry-After`.',
        errors: ['resource_locked', 'client_job_busy', 'idempotency_in_progress'],
        extra: {
          holder: z.strictObject({ jobId: z.string(), statusUrl: z.string(), eventsUrl: z.string(), expiresAt: Timestamp }).optional(),
        },
        headers: { 'Retry-After': RETRY_AFTER },
      },
      403: { description: 'A token that may not submit this kind (or not submit at all); nothing is written.', errors: ['token_scope'] },
      413: { description: 'The body is over the size limit.', errors: ['payload_too_large'], extra: { maxBytes: z.number().int() } },
      415: { description: 'The body is not `application/json`.', errors: ['unsupported_media_type'] },
      422: { description: 'The Idempotency-Key was used with a different body.', errors: ['idempotency_key_reused'] },
      503: {
        description: 'The background function or storage could not be reached. After `worker_unavailable` the job was failed and refunded and its Idempotency-Key is free.',
        errors: ['worker_unavailable', 'storage_unavailable'],
        headers: { 'Retry-After': RETRY_AFTER },
      },
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/jobs/:id',
    operationId: 'getJob',
    summary: 'A job’s status',
    description: 'Another account’s job, or one a token does not cover, answers 404 exactly like one that does not exist.',
    tags: ['jobs'],
    auth: 'caller',
    params: JOB_ID,
    headers: { 'If-None-Match': { description: 'The ETag of an earlier answer.' } },
    responses: {
      200: { description: 'The job.', body: PublicJobSchema, headers: { ETag: ETAG } },
      304: { description: 'Unchanged since the ETag sent.', headers: { ETag: ETAG } },
      404: { description: 'No such job (or another account’s, or one the token does not cover).', errors: ['not_found'] },
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/jobs/:id/events',
    operationId: 'getJobEvents',
    summary: 'A job’s event feed (poll or long-poll)',
    description:
      'Events after the cursor `after`, in order, none lost or repeated across polls. `done` is true once the job is finished and every event was read; pass `next` as `after` to get only what is new.',
    tags: ['jobs'],
    auth: 'caller',
    params: JOB_ID,
    query: FeedQuerySchema,
    responses: {
      200: { description: 'The events after the cursor.', body: FeedSchema, headers: { 'Retry-After': { ...RETRY_AFTER, description: 'While not done: when to ask again.' } } },
      400: { description: 'A malformed `after`, `limit` or `wait`, or a cursor past the end of the log.', errors: ['invalid_request', 'invalid_cursor'], extra: issues },
      404: { description: 'No such job (or another account’s, or one the token does not cover).', errors: ['not_found'] },
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/api/jobs/:id/cancel',
    operationId: 'cancelJob',
    summary: 'Cancel a job',
    description:
      'A scheduled or queued job is canceled at once (200), and refunded. A running job is asked to stop (202, `cancelRequested: true`, a `cancel_requested` event); it ends `canceled` with a terminal `canceled` event. A token needs the `cancel` action on this job.',
    tags: ['jobs'],
    auth: 'caller',
    params: JOB_ID,
    responses: {
      200: { description: 'Canceled at once (the job was scheduled or queued, or its worker had stopped).', body: PublicJobSchema },
      202: { description: 'Asked to stop: the worker ends the job shortly.', body: PublicJobSchema },
      404: { description: 'No such job (or another account’s, or one the token does not cover).', errors: ['not_found'] },
      409: {
        description: '`job_finished`: the job already ended. `job_busy`: it kept changing; ask again after `Retry-After`.',
        errors: ['job_finished', 'job_busy'],
        extra: { status: z.enum(['complete', 'failed', 'canceled']).optional() },
        headers: { 'Retry-After': RETRY_AFTER },
      },
    },
  }),
]
