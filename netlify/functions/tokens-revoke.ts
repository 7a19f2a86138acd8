import type { Config, Context } from '@netlify/functions'
import { requireAdmin } from '../../lib/admin/auth.ts'
import { notFound } from '../../lib/core/errors.ts'
import { allowMethods, json } from '../../lib/http/http.ts'
import { type RevokedTokens, UnknownAccountError, revokeAccountTokens } from '../../lib/tokens/revoke.ts'
import { validAccountName } from '../../lib/accounts/api-keys.ts'
import { appFor, serveApi } from '../app.ts'

/** POST /api/admin/accounts/:name/revoke-tokens: ends every browser token the account has made (ADMIN_TOKEN). */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['POST'])
    requireAdmin(process.env.ADMIN_TOKEN, req.headers.get('authorization'))
    const deps = appFor(req)
    const account = context.params.name ?? ''
    if (!validAccountName(account)) throw notFound('account')
    try {
      const tokenGeneration = await revokeAccountTokens(deps.store, deps.clock, account)
      const revoked: RevokedTokens = { account, tokenGeneration, revokedBefore: new Date(deps.clock.now()).toISOString() }
      return json(revoked)
    } catch (error) {
      if (error instanceof UnknownAccountError) throw notFound('account')
      throw error
    }
  })

export const config: Config = { path: '/api/admin/accounts/:name/revoke-tokens' }
