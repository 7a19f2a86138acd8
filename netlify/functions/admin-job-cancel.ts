import type { Config, Context } from '@netlify/functions'
import { adminCancel } from '../../lib/admin/actions.ts'
import { requireAdmin } from '../../lib/admin/auth.ts'
import { allowMethods, json } from '../../lib/http/http.ts'
import { appFor, serveApi } from '../app.ts'

/** POST /api/admin/jobs/:id/cancel: the operator cancels any account's job (ADMIN_TOKEN). */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['POST'])
    requireAdmin(process.env.ADMIN_TOKEN, req.headers.get('authorization'))
    const { status, job } = await adminCancel(appFor(req), context.params.id ?? '')
    return json(job, status)
  })

export const config: Config = { path: '/api/admin/jobs/:id/cancel' }
