/** The generated-file routes: download, list by job, list by source task. */
import { z } from 'zod'
import { IssueSchema, defineRoute } from '../openapi.ts'
import { JobAssetsSchema, TaskAssetsSchema } from '../../assets/assets.ts'

const NOT_FOUND = { description: 'No such file or job (or another account’s), or it expired.', errors: ['not_found'] }

export const assetRoutes = [
  defineRoute({
    method: 'GET',
    path: '/api/assets/:id',
    operationId: 'downloadAsset',
    summary: 'Download a generated file',
    description: 'Streams the bytes. `If-None-Match` with the ETag (the file’s sha256, quoted) answers 304.',
    tags: ['assets'],
    auth: 'apiKey',
    params: { id: 'The asset id (`asset_…`).' },
    headers: { 'If-None-Match': { description: 'The ETag of an earlier download.' } },
    responses: {
      200: {
        description: 'The file.',
        media: 'application/octet-stream',
        headers: {
          ETag: { description: 'The sha256 of the bytes, quoted.', required: true },
          'Content-Disposition': { description: '`attachment` with the file’s name.', required: true },
          'Content-Length': { description: 'Bytes.', required: true },
        },
      },
      304: { description: 'Unchanged: the ETag matches.', headers: { ETag: { description: 'The sha256 of the bytes, quoted.', required: true } } },
      404: NOT_FOUND,
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/jobs/:id/assets',
    operationId: 'listJobAssets',
    summary: 'A job’s files',
    description: 'Oldest first; still answers after the job’s own record has expired, as long as its files remain.',
    tags: ['assets'],
    auth: 'apiKey',
    params: { id: 'The job id (`job_…`).' },
    responses: { 200: { description: 'The job’s files.', body: JobAssetsSchema }, 404: NOT_FOUND },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/assets',
    operationId: 'listTaskAssets',
    summary: 'The caller’s files for one source task',
    tags: ['assets'],
    auth: 'apiKey',
    query: z.strictObject({ sourceTaskId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/).describe('The `sourceTaskId` given at submit.') }),
    responses: {
      200: { description: 'The files, across the task’s jobs, oldest first.', body: TaskAssetsSchema },
      400: { description: 'A missing or malformed `sourceTaskId`.', errors: ['invalid_request'], extra: { issues: z.array(IssueSchema).optional() } },
    },
  }),
]
