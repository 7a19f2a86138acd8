import type { Config, Context } from '@netlify/functions'
import { adminSnapshot } from '../../lib/admin/snapshot.ts'
import { isAdminToken } from '../../lib/accounts/api-keys.ts'
import { unauthorized } from '../../lib/core/errors.ts'
import { allowMethods, json } from '../../lib/http/http.ts'
import { parseAdminQuery } from '../../lib/admin/snapshot.ts'
import { appFor, serveApi } from '../app.ts'

/** GET /api/admin/jobs: operator snapshot (ADMIN_TOKEN), with internal error detail. */
export default async (req: Request, _context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    if (!isAdminToken(process.env.ADMIN_TOKEN, req.headers.get('authorization'))) throw unauthorized()
    const deps = appFor(req)
    return json(await adminSnapshot(deps, parseAdminQuery(new URL(req.url).searchParams)))
  })

export const config: Config = { path: '/api/admin/jobs' }
