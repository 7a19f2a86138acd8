/** The generated-file routes: download, list by job, list by source task. */
import { z } from 'zod'
import { IssueSchema, defineRoute } from '../openapi.ts'
import { JobAssetsSchema, TaskAssetsSchema } from '../../assets/assets.ts'
import { MAX_RANGE_BYTES } from '../../assets/download.ts'
import { AssetLinkQuerySchema } from '../../assets/links.ts'

const NOT_FOUND = { description: 'No such file or job (or another account’s, or one the token does not cover), or it expired.', errors: ['not_found'] }
const ETAG = { description: 'The sha256 of the bytes, quoted (a strong ETag).', required: true }
const ACCEPT_RANGES = { description: '`bytes`', required: true }
const CACHE = { description: '`private, no-cache` for an answer to a credential; `private, max-age=<seconds until the link expires>` for a signed link.', required: true }
const FILE_HEADERS = {
  ETag: ETAG,
  'Accept-Ranges': ACCEPT_RANGES,
  'Cache-Control': CACHE,
  'Content-Disposition': { description: '`attachment` with the file’s name.', required: true },
  'Content-Length': { description: 'Bytes in this answer.', required: true },
}

export const assetRoutes = [
  defineRoute({
    method: 'GET',
    path: '/api/assets/:id',
    operationId: 'downloadAsset',
    summary: 'Download a generated file',
    description:
      'Streams the bytes, whole or one byte range. Authorized by a signed link (`exp` and `sig` in the query, as the `url` of each file in the job views; an `Authorization` header beside it is ignored), or by an API key or a token that reads the file. A malformed or expired link is 401; a link for another file or account, or a changed one, is 404 like a missing file. `If-None-Match` with the ETag answers 304 and is checked first. `Range: bytes=a-b`, `a-` or `-n` answers 206; a range longer than ' +
      `${MAX_RANGE_BYTES / 1024 / 1024} MiB is answered with its first ${MAX_RANGE_BYTES / 1024 / 1024} MiB (Content-Range says which), so every answer stays under Netlify’s 20 MB response cap. Several ranges, or a header that does not parse, get the whole file (200).`,
    tags: ['assets'],
    auth: 'caller',
    anonymous: true,
    params: { id: 'The asset id (`asset_…`).' },
    query: AssetLinkQuerySchema,
    headers: {
      'If-None-Match': { description: 'The ETag of an earlier download.' },
      Range: { description: 'One byte range: `bytes=a-b`, `bytes=a-` or `bytes=-n`.' },
      'If-Range': { description: 'The file’s ETag: the range applies only while the file is that one; anything else (a weak ETag, a date) gets the whole file.' },
    },
    responses: {
      200: { description: 'The whole file.', media: 'application/octet-stream', headers: FILE_HEADERS },
      206: {
        description: `The range asked for (at most its first ${MAX_RANGE_BYTES / 1024 / 1024} MiB).`,
        media: 'application/octet-stream',
        headers: { ...FILE_HEADERS, 'Content-Range': { description: '`bytes a-b/size`: what this answer holds.', required: true } },
      },
      304: { description: 'Unchanged: the ETag matches.', headers: { ETag: ETAG, 'Accept-Ranges': ACCEPT_RANGES, 'Cache-Control': CACHE } },
      404: NOT_FOUND,
      416: {
        description: 'The range starts past the end of the file (or is `bytes=-0`, or the file is empty).',
        errors: ['range_not_satisfiable'],
        extra: { bytes: z.number().int().nonnegative() },
        headers: { 'Content-Range': { description: '`bytes */size`', required: true }, 'Accept-Ranges': ACCEPT_RANGES },
      },
    },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/jobs/:id/assets',
    operationId: 'listJobAssets',
    summary: 'A job’s files',
    description: 'Oldest first; still answers after the job’s own record has expired, as long as its files remain.',
    tags: ['assets'],
    auth: 'caller',
    params: { id: 'The job id (`job_…`).' },
    responses: { 200: { description: 'The job’s files.', body: JobAssetsSchema }, 404: NOT_FOUND },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/assets',
    operationId: 'listTaskAssets',
    summary: 'The caller’s files for one source task',
    tags: ['assets'],
    auth: 'caller',
    query: z.strictObject({ sourceTaskId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/).describe('The `sourceTaskId` given at submit.') }),
    responses: {
      200: { description: 'The files, across the task’s jobs, oldest first.', body: TaskAssetsSchema },
      400: { description: 'A missing or malformed `sourceTaskId`.', errors: ['invalid_request'], extra: { issues: z.array(IssueSchema).optional() } },
      404: { description: 'A token that cannot read files at all (a submit token), as for a file it does not cover.', errors: ['not_found'] },
    },
  }),
]
