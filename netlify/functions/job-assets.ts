import type { Config, Context } from '@netlify/functions'
import { authenticate } from '../../lib/accounts/api-keys.ts'
import { listJobAssets } from '../../lib/assets/assets.ts'
import { allowMethods, json, respond } from '../../lib/http/http.ts'
import { assetLinks } from '../../lib/assets/links.ts'
import { appFor, assetLinkKey, log } from '../app.ts'

/** GET /api/jobs/:id/assets: the files a job generated (404 for another account's job). */
export default async (req: Request, context: Context) =>
  respond(log, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const account = await authenticate(deps.store, req.headers.get('authorization'))
    return json(await listJobAssets(deps, account, context.params.id ?? '', assetLinks(assetLinkKey(), account, deps.clock.now())))
  })

export const config: Config = { path: '/api/jobs/:id/assets' }
