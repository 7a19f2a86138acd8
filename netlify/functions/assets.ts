import type { Config, Context } from '@netlify/functions'
import { listTaskAssets } from '../../lib/assets/assets.ts'
import { allowMethods, json } from '../../lib/http/http.ts'
import { authenticateRequest, viewerFor } from '../../lib/tokens/caller.ts'
import { appFor, serveApi } from '../app.ts'

/** GET /api/assets?sourceTaskId=…: the caller's generated files for one source task. */
export default async (req: Request, _context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const viewer = viewerFor(await authenticateRequest(deps, req), 'read', { what: 'asset' })
    return json(await listTaskAssets(deps, viewer, new URL(req.url).searchParams.get('sourceTaskId')))
  })

export const config: Config = { path: '/api/assets' }
