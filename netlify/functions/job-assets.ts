import type { Config, Context } from '@netlify/functions'
import { listJobAssets } from '../../lib/assets/assets.ts'
import { allowMethods, json } from '../../lib/http/http.ts'
import { authenticateRequest, viewerFor } from '../../lib/tokens/caller.ts'
import { appFor, serveApi } from '../app.ts'

/** GET /api/jobs/:id/assets: the files a job generated (404 for another account's job). */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const jobId = context.params.id ?? ''
    const viewer = viewerFor(await authenticateRequest(deps, req), 'read', { jobId })
    return json(await listJobAssets(deps, viewer, jobId))
  })

export const config: Config = { path: '/api/jobs/:id/assets' }
