import type { Config, Context } from '@netlify/functions'
import { requireAdmin } from '../../lib/admin/auth.ts'
import { SearchQuerySchema, parseQuery } from '../../lib/admin/schemas.ts'
import { searchJobs } from '../../lib/admin/search.ts'
import { allowMethods, json } from '../../lib/http/http.ts'
import { appFor, serveApi } from '../app.ts'

/** GET /api/admin/search?status=&kind=&account=&cursor=&limit=: jobs newest first, bounded reads per page (ADMIN_TOKEN). */
export default async (req: Request, _context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    requireAdmin(process.env.ADMIN_TOKEN, req.headers.get('authorization'))
    const query = parseQuery(SearchQuerySchema, new URL(req.url).searchParams)
    return json(await searchJobs(appFor(req), query))
  })

export const config: Config = { path: '/api/admin/search' }
