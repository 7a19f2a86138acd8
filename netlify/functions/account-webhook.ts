import type { Config, Context } from '@netlify/functions'
import { allowMethods, json, readJsonBody } from '../../lib/http/http.ts'
import { authenticateRequest, requireApiKey } from '../../lib/tokens/caller.ts'
import { accountWebhook, setAccountWebhook } from '../../lib/webhooks/account.ts'
import { appFor, serveApi } from '../app.ts'

/** GET / PUT /api/account/webhook: the account's default webhook URL and its signing secret (API keys only). */
export default async (req: Request, _context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET', 'PUT'])
    const deps = appFor(req)
    const caller = await authenticateRequest(deps, req)
    requireApiKey(caller, 'manage webhooks')
    if (req.method === 'GET') return json(await accountWebhook(deps, caller.account))
    return json(await setAccountWebhook(deps, caller.account, await readJsonBody(req, 16 * 1024)))
  })

export const config: Config = { path: '/api/account/webhook' }
