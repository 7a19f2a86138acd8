import type { Config, Context } from '@netlify/functions'
import { requireAdmin } from '../../lib/admin/auth.ts'
import { jobDetail } from '../../lib/admin/detail.ts'
import { DetailQuerySchema, parseQuery } from '../../lib/admin/schemas.ts'
import { allowMethods, json } from '../../lib/http/http.ts'
import { appFor, serveApi } from '../app.ts'

/** GET /api/admin/jobs/:id?after=&limit=: one job for the operator, with a page of its timeline (ADMIN_TOKEN). */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    requireAdmin(process.env.ADMIN_TOKEN, req.headers.get('authorization'))
    const query = parseQuery(DetailQuerySchema, new URL(req.url).searchParams)
    return json(await jobDetail(appFor(req), context.params.id ?? '', query))
  })

export const config: Config = { path: '/api/admin/jobs/:id' }
