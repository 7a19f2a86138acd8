import type { Config, Context } from '@netlify/functions'
import { requireAdmin } from '../../lib/admin/auth.ts'
import { overview } from '../../lib/admin/overview.ts'
import { allowMethods, json } from '../../lib/http/http.ts'
import { appFor, serveApi } from '../app.ts'

/** GET /api/admin/overview: held locks and account balances, without listing jobs (ADMIN_TOKEN). */
export default async (req: Request, _context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    requireAdmin(process.env.ADMIN_TOKEN, req.headers.get('authorization'))
    return json(await overview(appFor(req)))
  })

export const config: Config = { path: '/api/admin/overview' }
