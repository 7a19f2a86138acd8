import type { Config, Context } from '@netlify/functions'
import { allowMethods, json, readJsonBody } from '../../lib/http/http.ts'
import { authenticateRequest, requireApiKey } from '../../lib/tokens/caller.ts'
import { mintRequested } from '../../lib/tokens/mint.ts'
import { appFor, serveApi } from '../app.ts'

/** POST /api/tokens: an API key mints a short-lived browser token of a chosen scope. */
export default async (req: Request, _context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['POST'])
    const deps = appFor(req)
    const caller = await authenticateRequest(deps, req)
    requireApiKey(caller, 'mint tokens')
    const minted = await mintRequested(deps, caller, await readJsonBody(req, 16 * 1024))
    return json(minted, 201)
  })

export const config: Config = { path: '/api/tokens' }
