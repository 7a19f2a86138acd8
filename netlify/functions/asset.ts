import type { Config, Context } from '@netlify/functions'
import { openDownload } from '../../lib/assets/assets.ts'
import { allowMethods } from '../../lib/http/http.ts'
import { authenticateRequest, viewerFor } from '../../lib/tokens/caller.ts'
import { appFor, serveApi } from '../app.ts'

/**
 * GET /api/assets/:id: downloads a generated file. The body is the Blobs
 * response stream itself, so the function never holds the file in memory.
 */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const viewer = viewerFor(await authenticateRequest(deps, req), 'read', { what: 'asset' })
    const download = await openDownload(deps, viewer, context.params.id ?? '', req.headers.get('if-none-match'))
    return new Response(download.body, { status: download.status, headers: download.headers })
  })

export const config: Config = { path: '/api/assets/:id' }
