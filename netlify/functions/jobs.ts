import type { Config, Context } from '@netlify/functions'
import { authenticateCaller } from '../../lib/accounts/api-keys.ts'
import { allowMethods, json, readJsonBody, respond } from '../../lib/http/http.ts'
import { submitJob } from '../../lib/jobs/submit.ts'
import { appFor, log } from '../app.ts'

/** POST /api/jobs: submit a job. */
export default async (req: Request, _context: Context) =>
  respond(log, async () => {
    allowMethods(req, ['POST'])
    const deps = appFor(req)
    const { account, accountRead } = await authenticateCaller(deps.store, req.headers.get('authorization'))
    const body = await readJsonBody(req, deps.settings.maxBodyBytes)
    const submitted = await submitJob(deps, account, body, req.headers.get('idempotency-key'), { accountRead })
    return json(submitted.body, submitted.status, {
      Location: submitted.body.statusUrl,
      ...(submitted.replayed ? { 'Idempotent-Replayed': 'true' } : {}),
    })
  })

export const config: Config = { path: '/api/jobs' }
