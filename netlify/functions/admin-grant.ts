import type { Config, Context } from '@netlify/functions'
import { grantOnce } from '../../lib/admin/actions.ts'
import { requireAdmin } from '../../lib/admin/auth.ts'
import { GrantBodySchema, parseBody } from '../../lib/admin/schemas.ts'
import { allowMethods, json, readJsonBody } from '../../lib/http/http.ts'
import { appFor, serveApi } from '../app.ts'

/** POST /api/admin/accounts/:account/grants { grantId, amount, reason }: credits, once per grant id (ADMIN_TOKEN). */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['POST'])
    requireAdmin(process.env.ADMIN_TOKEN, req.headers.get('authorization'))
    const deps = appFor(req)
    const body = parseBody(GrantBodySchema, await readJsonBody(req, 16 * 1024))
    return json(await grantOnce(deps, context.params.account ?? '', body))
  })

export const config: Config = { path: '/api/admin/accounts/:account/grants' }
