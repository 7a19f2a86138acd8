import type { Context } from '@netlify/functions'
import { verifyWorkerRequest } from '../../lib/core/signing.ts'
import { runJob } from '../../lib/jobs/worker.ts'
import { JOB_ID_PATTERN } from '../../lib/core/ids.ts'
import { appFor, log, signingSecret } from '../app.ts'

/**
 * The background worker (up to 15 minutes). Reachable by anyone, so it acts
 * only on requests signed by the submit function. Netlify may deliver a call
 * more than once; `runJob` claims the job so only one run does the work.
 */
export default async (req: Request, _context: Context) => {
  // The 15 minutes count from here: a retry's wait is slept in this invocation only if the attempt after it fits.
  const invokedAt = Date.now()
  const bytes = new Uint8Array(await req.arrayBuffer())
  const check = verifyWorkerRequest(signingSecret(), bytes, req.headers, Date.now())
  if (!check.valid) {
    log.error('worker refused an unsigned or stale request', { reason: check.reason })
    return new Response(null, { status: 401 })
  }
  const call = parseWorkerCall(bytes)
  if (!call) return new Response(null, { status: 400 })
  const { jobId, deployContext } = call
  const outcome = await runJob(appFor(req, process.env, deployContext), jobId, { invokedAt })
  log.info('worker finished', { jobId, outcome })
  return new Response(null, { status: 204 })
}

/** The signed body: the job, and the deploy context of the submit (whose stores hold the job). */
function parseWorkerCall(bytes: Uint8Array): { jobId: string; deployContext: string | undefined } | null {
  try {
    const { jobId, deployContext } = JSON.parse(new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes)) as { jobId?: unknown; deployContext?: unknown }
    if (typeof jobId !== 'string' || !JOB_ID_PATTERN.test(jobId)) return null
    return { jobId, deployContext: typeof deployContext === 'string' ? deployContext : undefined }
  } catch {
    return null
  }
}
