import type { Config, Context } from '@netlify/functions'
import { createHash } from 'node:crypto'
import { authenticate } from '../../lib/accounts/api-keys.ts'
import { allowMethods, json, respond } from '../../lib/http/http.ts'
import { getJob } from '../../lib/jobs/read.ts'
import { assetLinks, withAssetLinks } from '../../lib/assets/links.ts'
import { appFor, assetLinkKey, log } from '../app.ts'

/** GET /api/jobs/:id: the job as its client sees it. */
export default async (req: Request, context: Context) =>
  respond(log, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const account = await authenticate(deps.store, req.headers.get('authorization'))
    const job = withAssetLinks(await getJob(deps, account, context.params.id ?? ''), assetLinks(assetLinkKey(), account, deps.clock.now()))
    const etag = `"${createHash('sha256').update(JSON.stringify(job)).digest('base64url').slice(0, 27)}"`
    if (req.headers.get('if-none-match') === etag) {
      return new Response(null, { status: 304, headers: { ETag: etag, 'Cache-Control': 'no-cache' } })
    }
    return json(job, 200, { ETag: etag, 'Cache-Control': 'no-cache' })
  })

export const config: Config = { path: '/api/jobs/:id' }
