import type { Config, Context } from '@netlify/functions'
import { adminRetry } from '../../lib/admin/actions.ts'
import { requireAdmin } from '../../lib/admin/auth.ts'
import { allowMethods, json } from '../../lib/http/http.ts'
import { appFor, serveApi } from '../app.ts'

/** POST /api/admin/jobs/:id/retry: the operator runs a failed job again, as a new job (ADMIN_TOKEN). */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['POST'])
    requireAdmin(process.env.ADMIN_TOKEN, req.headers.get('authorization'))
    const { status, body, retryOf } = await adminRetry(appFor(req), context.params.id ?? '')
    return json({ ...body, retryOf }, status, { Location: body.statusUrl })
  })

export const config: Config = { path: '/api/admin/jobs/:id/retry' }
