import type { Config, Context } from '@netlify/functions'
import { downloadConditions, openDownload } from '../../lib/assets/download.ts'
import { readAssetLink } from '../../lib/assets/links.ts'
import { allowMethods } from '../../lib/http/http.ts'
import { authenticateRequest, viewerFor } from '../../lib/tokens/caller.ts'
import { appFor, assetLinkKey, serveApi } from '../app.ts'

/**
 * GET /api/assets/:id: downloads a generated file, whole or one `Range`.
 * A request with `exp` and `sig` in its query is judged by that signed link
 * alone (what `<img src>` sends); otherwise it needs `Authorization`. The body
 * is streamed from Blobs, so the function never holds the file in memory.
 */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const link = readAssetLink(new URL(req.url).searchParams, deps.clock.now())
    const access = link ? { link, key: assetLinkKey() } : { viewer: viewerFor(await authenticateRequest(deps, req), 'read', { what: 'asset' }) }
    const download = await openDownload(deps, access, context.params.id ?? '', downloadConditions(req.headers))
    return new Response(download.body, { status: download.status, headers: download.headers })
  })

export const config: Config = { path: '/api/assets/:id' }
