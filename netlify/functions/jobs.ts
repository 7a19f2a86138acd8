import type { Config, Context } from '@netlify/functions'
import { allowMethods, json, readJsonBody } from '../../lib/http/http.ts'
import { submitJob } from '../../lib/jobs/submit.ts'
import { authenticateRequest, idempotencyNamespace, requireSubmit, submitBodyFor } from '../../lib/tokens/caller.ts'
import { watchTokenFor } from '../../lib/tokens/mint.ts'
import { appFor, serveApi } from '../app.ts'

/** POST /api/jobs: submit a job (an API key, or a token scoped to submit its kind). */
export default async (req: Request, _context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['POST'])
    const deps = appFor(req)
    const caller = await authenticateRequest(deps, req)
    requireSubmit(caller)
    const body = submitBodyFor(caller, await readJsonBody(req, deps.settings.maxBodyBytes))
    requireSubmit(caller, (body as { kind?: unknown } | null)?.kind)
    const submitted = await submitJob(deps, caller.account, body, req.headers.get('idempotency-key'), {
      accountRead: caller.accountRead,
      idempotencyNamespace: idempotencyNamespace(caller),
    })
    const watch = await watchTokenFor(deps, caller, submitted.body.jobId)
    return json({ ...submitted.body, ...watch }, submitted.status, {
      Location: submitted.body.statusUrl,
      ...(submitted.replayed ? { 'Idempotent-Replayed': 'true' } : {}),
    })
  })

export const config: Config = { path: '/api/jobs' }
