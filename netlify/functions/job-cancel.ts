import type { Config, Context } from '@netlify/functions'
import { allowMethods, json } from '../../lib/http/http.ts'
import { cancelJob } from '../../lib/jobs/read.ts'
import { authenticateRequest, viewerFor } from '../../lib/tokens/caller.ts'
import { appFor, serveApi } from '../app.ts'

/** POST /api/jobs/:id/cancel: cancel a queued job, or ask a running one to stop. */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['POST'])
    const deps = appFor(req)
    const jobId = context.params.id ?? ''
    const viewer = viewerFor(await authenticateRequest(deps, req), 'cancel', { jobId })
    const { status, job } = await cancelJob(deps, viewer, jobId)
    return json(job, status)
  })

export const config: Config = { path: '/api/jobs/:id/cancel' }
