import type { Config, Context } from '@netlify/functions'
import { createHash } from 'node:crypto'
import { allowMethods, json } from '../../lib/http/http.ts'
import { getJob } from '../../lib/jobs/read.ts'
import { authenticateRequest, viewerFor } from '../../lib/tokens/caller.ts'
import { appFor, serveApi } from '../app.ts'

/** GET /api/jobs/:id: the job as its client sees it. */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const jobId = context.params.id ?? ''
    const viewer = viewerFor(await authenticateRequest(deps, req), 'read', { jobId })
    const job = await getJob(deps, viewer, jobId)
    const etag = `"${createHash('sha256').update(JSON.stringify(job)).digest('base64url').slice(0, 27)}"`
    if (req.headers.get('if-none-match') === etag) {
      return new Response(null, { status: 304, headers: { ETag: etag, 'Cache-Control': 'no-cache' } })
    }
    return json(job, 200, { ETag: etag, 'Cache-Control': 'no-cache' })
  })

export const config: Config = { path: '/api/jobs/:id' }
