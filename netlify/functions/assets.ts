import type { Config, Context } from '@netlify/functions'
import { authenticate } from '../../lib/accounts/api-keys.ts'
import { listTaskAssets } from '../../lib/assets/assets.ts'
import { allowMethods, json, respond } from '../../lib/http/http.ts'
import { assetLinks } from '../../lib/assets/links.ts'
import { appFor, assetLinkKey, log } from '../app.ts'

/** GET /api/assets?sourceTaskId=…: the caller's generated files for one source task. */
export default async (req: Request, _context: Context) =>
  respond(log, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const account = await authenticate(deps.store, req.headers.get('authorization'))
    const links = assetLinks(assetLinkKey(), account, deps.clock.now())
    return json(await listTaskAssets(deps, account, new URL(req.url).searchParams.get('sourceTaskId'), links))
  })

export const config: Config = { path: '/api/assets' }
