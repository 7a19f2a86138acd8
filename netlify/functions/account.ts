import type { Config, Context } from '@netlify/functions'
import { accountView } from '../../lib/credits/index.ts'
import { allowMethods, json } from '../../lib/http/http.ts'
import { authenticateRequest, requireApiKey } from '../../lib/tokens/caller.ts'
import { appFor, serveApi } from '../app.ts'

/** GET /api/account: the caller's balance and newest ledger entries (API keys only). */
export default async (req: Request, _context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const caller = await authenticateRequest(deps, req)
    requireApiKey(caller, 'read the account')
    return json(await accountView(deps.store, caller.account))
  })

export const config: Config = { path: '/api/account' }
