import type { Config, Context } from '@netlify/functions'
import { authenticate } from '../../lib/accounts/api-keys.ts'
import { openDownload } from '../../lib/assets/assets.ts'
import { allowMethods, respond } from '../../lib/http/http.ts'
import { appFor, log } from '../app.ts'

/**
 * GET /api/assets/:id: downloads a generated file. The body is the Blobs
 * response stream itself, so the function never holds the file in memory.
 */
export default async (req: Request, context: Context) =>
  respond(log, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const account = await authenticate(deps.store, req.headers.get('authorization'))
    const download = await openDownload(deps, account, context.params.id ?? '', req.headers.get('if-none-match'))
    return new Response(download.body, { status: download.status, headers: download.headers })
  })

export const config: Config = { path: '/api/assets/:id' }
