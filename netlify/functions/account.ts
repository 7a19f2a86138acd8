import type { Config, Context } from '@netlify/functions'
import { authenticate } from '../../lib/accounts/api-keys.ts'
import { accountView } from '../../lib/credits/index.ts'
import { allowMethods, json, respond } from '../../lib/http/http.ts'
import { appFor, log } from '../app.ts'

/** GET /api/account: the caller's balance and newest ledger entries. */
export default async (req: Request, _context: Context) =>
  respond(log, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const account = await authenticate(deps.store, req.headers.get('authorization'))
    return json(await accountView(deps.store, account))
  })

export const config: Config = { path: '/api/account' }
