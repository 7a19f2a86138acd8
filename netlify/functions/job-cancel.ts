import type { Config, Context } from '@netlify/functions'
import { authenticate } from '../../lib/accounts/api-keys.ts'
import { allowMethods, json, respond } from '../../lib/http/http.ts'
import { cancelJob } from '../../lib/jobs/read.ts'
import { appFor, log } from '../app.ts'

/** POST /api/jobs/:id/cancel: cancel a queued job, or ask a running one to stop. */
export default async (req: Request, context: Context) =>
  respond(log, async () => {
    allowMethods(req, ['POST'])
    const deps = appFor(req)
    const account = await authenticate(deps.store, req.headers.get('authorization'))
    const { status, job } = await cancelJob(deps, account, context.params.id ?? '')
    return json(job, status)
  })

export const config: Config = { path: '/api/jobs/:id/cancel' }
