import type { Config, Context } from '@netlify/functions'
import { createHash } from 'node:crypto'
import { allowMethods, json } from '../../lib/http/http.ts'
import { getJob } from '../../lib/jobs/read.ts'
import { assetLinks, withAssetLinks } from '../../lib/assets/links.ts'
import { authenticateRequest, viewerFor } from '../../lib/tokens/caller.ts'
import { viewerAccount } from '../../lib/tokens/viewer.ts'
import { appFor, assetLinkKey, serveApi } from '../app.ts'

/** GET /api/jobs/:id: the job as its client sees it. */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const jobId = context.params.id ?? ''
    const viewer = viewerFor(await authenticateRequest(deps, req), 'read', { jobId })
    const job = withAssetLinks(await getJob(deps, viewer, jobId), assetLinks(assetLinkKey(), viewerAccount(viewer), deps.clock.now()))
    const etag = `"${createHash('sha256').update(JSON.stringify(job)).digest('base64url').slice(0, 27)}"`
    if (req.headers.get('if-none-match') === etag) {
      return new Response(null, { status: 304, headers: { ETag: etag, 'Cache-Control': 'private, no-cache' } })
    }
    return json(job, 200, { ETag: etag, 'Cache-Control': 'private, no-cache' })
  })

export const config: Config = { path: '/api/jobs/:id' }
