/** The operator snapshot's shape (`GET /api/admin/jobs`), for the OpenAPI document. */
import { z } from 'zod'
import { OperatorJobSchema, Timestamp } from '../jobs/views.ts'

export const AdminSnapshotSchema = z.strictObject({
  generatedAt: Timestamp,
  jobs: z.array(OperatorJobSchema),
  /** Pass as `before` for the next, older page; null when every job was examined. */
  next: z.string().nullable(),
  examined: z.number().int().nonnegative(),
  locks: z.array(
    z.strictObject({ resource: z.string(), jobId: z.string(), acquiredAt: Timestamp, expiresAt: Timestamp, expired: z.boolean() }),
  ),
  locksTruncated: z.boolean(),
  /** Records that could not be parsed, by key; skipped otherwise. */
  unreadable: z.array(z.strictObject({ record: z.string() })),
  accounts: z.array(z.strictObject({ account: z.string(), balance: z.number().int(), ledgerEntries: z.number().int().nonnegative() })),
})

export const AdminQuerySchema = z.strictObject({
  limit: z.int().min(1).max(500).optional().describe('Jobs per page (default 50).'),
  status: z.enum(['scheduled', 'queued', 'running', 'retrying', 'complete', 'failed', 'canceled']).optional(),
  before: z.string().optional().describe('Only jobs older than this id: the `next` of the previous page.'),
})
