/** The operator routes, behind ADMIN_TOKEN: the console (search, job detail, cancel, retry, grants, summary, overview) and the older snapshot. */
import { z } from 'zod'
import { IssueSchema, RETRY_AFTER, defineRoute } from '../openapi.ts'
import { AdminQuerySchema, AdminSnapshotSchema } from '../../admin/snapshot-schema.ts'
import {
  DetailQuerySchema,
  GrantBodySchema,
  GrantResultSchema,
  JobDetailSchema,
  OverviewSchema,
  SearchPageSchema,
  SearchQuerySchema,
  SummarySchema,
} from '../../admin/schemas.ts'
import { PublicJobSchema, Timestamp } from '../../jobs/views.ts'
import { SubmittedBodySchema } from '../../jobs/submit.ts'
import { JOB_STATUSES } from '../../core/types.ts'

const issues = { issues: z.array(IssueSchema).optional() }
const BAD_QUERY = { description: 'A malformed or unknown query parameter (named in `issues`).', errors: ['invalid_request'], extra: issues }
const JOB_ID = { id: 'The job id (`job_…`), of any account.' }
const NO_JOB = { description: 'No such job.', errors: ['not_found'] }

export const adminRoutes = [
  defineRoute({
    method: 'GET',
    path: '/api/admin/jobs',
    operationId: 'adminSnapshot',
    summary: 'Operator snapshot: recent jobs with both error forms, held locks, accounts',
    description: 'Reads at most `max(limit, 200)` job records per request; pass `next` as `before` for older jobs.',
    tags: ['admin'],
    auth: 'admin',
    query: AdminQuerySchema,
    responses: {
      200: { description: 'The snapshot.', body: AdminSnapshotSchema },
      400: { description: 'A malformed `limit`, `status` or `before`.', errors: ['invalid_request'], extra: issues },
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/admin/search',
    operationId: 'adminSearchJobs',
    summary: 'Jobs newest first, filtered by status, kind and account',
    description:
      'Live jobs first, then finished ones from the console’s history index. Pass `next` as `cursor` for older jobs; `examined` says how many jobs the page looked at. Each page reads a bounded number of records, whatever is stored.',
    tags: ['admin'],
    auth: 'admin',
    query: SearchQuerySchema,
    responses: { 200: { description: 'A page of jobs.', body: SearchPageSchema }, 400: BAD_QUERY },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/admin/jobs/:id',
    operationId: 'adminJobDetail',
    summary: 'One job: state with both error forms, attempts, a page of its timeline, its lock and charge',
    tags: ['admin'],
    auth: 'admin',
    params: JOB_ID,
    query: DetailQuerySchema,
    responses: { 200: { description: 'The job.', body: JobDetailSchema }, 400: BAD_QUERY, 404: NO_JOB },
  }),
  defineRoute({
    method: 'POST',
    path: '/api/admin/jobs/:id/cancel',
    operationId: 'adminCancelJob',
    summary: 'Cancel any account’s job, as its owner would',
    tags: ['admin'],
    auth: 'admin',
    params: JOB_ID,
    responses: {
      200: { description: 'Canceled at once (the job was queued, or its worker had stopped).', body: PublicJobSchema },
      202: { description: 'Asked to stop: the worker ends the job shortly.', body: PublicJobSchema },
      404: NO_JOB,
      409: {
        description: '`job_finished`: the job already ended. `job_busy`: it kept changing; ask again after `Retry-After`.',
        errors: ['job_finished', 'job_busy'],
        extra: { status: z.enum(['complete', 'failed', 'canceled']).optional() },
        headers: { 'Retry-After': RETRY_AFTER },
      },
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/api/admin/jobs/:id/retry',
    operationId: 'adminRetryJob',
    summary: 'Run a failed job again, as a new job',
    description:
      'Submits the failed job’s kind, input, source task and client job id again for its account, as its owner would: charged, locked and started like any job (the failed one was refunded). Asking again for the same failed job answers 200 with the job the first request made.',
    tags: ['admin'],
    auth: 'admin',
    params: JOB_ID,
    responses: {
      202: { description: 'The new job.', body: SubmittedBodySchema.extend({ retryOf: z.string() }) },
      200: { description: 'This failed job was already run again: the job that made.', body: SubmittedBodySchema.extend({ retryOf: z.string() }) },
      402: { description: 'The account cannot pay for the new job.', errors: ['insufficient_credits'], extra: { balance: z.number().int(), cost: z.number().int() } },
      404: NO_JOB,
      409: {
        description:
          '`job_not_failed`: only a failed job runs again. `retry_unavailable`: its input is no longer kept. `resource_locked`: another job holds its resource now. `client_job_busy`, `idempotency_in_progress`: ask again after `Retry-After`.',
        errors: ['job_not_failed', 'retry_unavailable', 'resource_locked', 'client_job_busy', 'idempotency_in_progress'],
        extra: {
          status: z.enum(JOB_STATUSES).optional(),
          holder: z.strictObject({ jobId: z.string(), statusUrl: z.string(), eventsUrl: z.string(), expiresAt: Timestamp }).optional(),
        },
        headers: { 'Retry-After': RETRY_AFTER },
      },
      503: {
        description: 'The background function or storage could not be reached (a `worker_unavailable` job was failed and refunded).',
        errors: ['worker_unavailable', 'storage_unavailable'],
        headers: { 'Retry-After': RETRY_AFTER },
      },
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/api/admin/accounts/:account/grants',
    operationId: 'adminGrantCredits',
    summary: 'Add credits, once per grant id',
    description:
      'The console makes a `grantId` when it shows the form, so a double click or a retry adds the credits once and answers `replayed: true` with the entry already there.',
    tags: ['admin'],
    auth: 'admin',
    params: { account: 'The account name.' },
    body: GrantBodySchema,
    responses: {
      200: { description: 'Granted (or already granted under this id).', body: GrantResultSchema },
      400: { description: 'Bad JSON, a bad field, or a grant id older than an hour.', errors: ['invalid_request'], extra: issues },
      404: { description: 'No such account.', errors: ['not_found'] },
      409: { description: 'The grant changed while it was applied; send it again after `Retry-After`.', errors: ['grant_busy'], headers: { 'Retry-After': RETRY_AFTER } },
      413: { description: 'The body is over 16 KB.', errors: ['payload_too_large'], extra: { maxBytes: z.number().int() } },
      415: { description: 'The body is not `application/json`.', errors: ['unsupported_media_type'] },
      422: { description: 'This grant id was used with another amount or reason.', errors: ['grant_id_reused'] },
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/admin/summary',
    operationId: 'adminSummary',
    summary: 'The last 24 hours: finished jobs by status, run time by kind, top failure codes, live jobs',
    description: 'From hourly rollups: 96 reads (24 hours × 4 shards) and one list, whatever the number of jobs.',
    tags: ['admin'],
    auth: 'admin',
    responses: { 200: { description: 'The summary.', body: SummarySchema } },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/admin/overview',
    operationId: 'adminOverview',
    summary: 'Held locks (of at most 100 live jobs) and accounts (at most 200) with their balances',
    tags: ['admin'],
    auth: 'admin',
    responses: { 200: { description: 'Locks and accounts.', body: OverviewSchema } },
  }),
]
