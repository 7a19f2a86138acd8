/** The operator routes, behind ADMIN_TOKEN. */
import { z } from 'zod'
import { IssueSchema, defineRoute } from '../openapi.ts'
import { AdminQuerySchema, AdminSnapshotSchema } from '../../admin/snapshot-schema.ts'

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
      400: { description: 'A malformed `limit`, `status` or `before`.', errors: ['invalid_request'], extra: { issues: z.array(IssueSchema).optional() } },
    },
  }),
]
