import type { Config, Context } from '@netlify/functions'
import { adminSnapshot } from '../../lib/admin/snapshot.ts'
import { requireAdminToken } from '../../lib/accounts/api-keys.ts'
import { allowMethods, json, respond } from '../../lib/http/http.ts'
import { parseAdminQuery } from '../../lib/admin/snapshot.ts'
import { appFor, log } from '../app.ts'

/** GET /api/admin/jobs: operator snapshot (ADMIN_TOKEN), with internal error detail. */
export default async (req: Request, _context: Context) =>
  respond(log, async () => {
    allowMethods(req, ['GET'])
    requireAdminToken(process.env.ADMIN_TOKEN, req.headers.get('authorization'))
    const deps = appFor(req)
    return json(await adminSnapshot(deps, parseAdminQuery(new URL(req.url).searchParams)))
  })

export const config: Config = { path: '/api/admin/jobs' }
