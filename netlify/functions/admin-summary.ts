import type { Config, Context } from '@netlify/functions'
import { requireAdmin } from '../../lib/admin/auth.ts'
import { summary } from '../../lib/admin/summary.ts'
import { allowMethods, json } from '../../lib/http/http.ts'
import { appFor, serveApi } from '../app.ts'

/** GET /api/admin/summary: the last 24 hours from hourly rollups (ADMIN_TOKEN). */
export default async (req: Request, _context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    requireAdmin(process.env.ADMIN_TOKEN, req.headers.get('authorization'))
    return json(await summary(appFor(req)))
  })

export const config: Config = { path: '/api/admin/summary' }
