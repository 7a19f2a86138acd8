/**
 * Local development only: the demo page holds no API key. `npm run dev`
 * passes its development key to `netlify dev` (never to `.env`), and a route
 * mints short tokens with it, standing in for the backend a real app would
 * have. Anywhere else (no `netlify dev`, a deploy context, a host name or a
 * client address that is not this machine) the route does not exist: `netlify dev`
 * listens on every interface, and a Host header proves nothing.
 */
import type { Deps } from '../core/deps.ts'
import { invalidRequest } from '../core/errors.ts'
import { JOB_ID_PATTERN } from '../core/ids.ts'
import { authenticateCaller } from '../accounts/api-keys.ts'
import { type Caller, keyIdOf } from './caller.ts'
import { type MintedToken, mintToken } from './mint.ts'

/** Long enough to submit a few jobs and cancel one; a dev token is fetched again when it runs out. */
export const DEV_TOKEN_TTL_SECONDS = 15 * 60
const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]'])
const LOOPBACK_IPS = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1'])
const LOCAL_CONTEXTS = new Set(['', 'dev'])

export interface DevTokenSetting {
  /** `NETLIFY_DEV`, which only `netlify dev` sets. */
  netlifyDev: string | undefined
  /** `DEV_TOKEN_API_KEY`, which only `npm run dev` passes. */
  apiKey: string | undefined
  deployContext: string
  /** The host the request was sent to: the Host header, which any client sets. */
  hostname: string
  /** The address the request came from (`context.ip`: `netlify dev` takes it from the socket). */
  clientIp: string | undefined
}

export function devTokensEnabled(setting: DevTokenSetting): setting is DevTokenSetting & { apiKey: string } {
  return setting.netlifyDev === 'true' && !!setting.apiKey && LOCAL_CONTEXTS.has(setting.deployContext) && LOOPBACK.has(setting.hostname) && LOOPBACK_IPS.has(setting.clientIp ?? '')
}

/**
 * A submit token for every kind, or with `jobId` a read-and-cancel token for
 * that job (the demo's Cancel button, and a reload that resumes a job).
 */
export async function devToken(deps: Pick<Deps, 'store' | 'clock' | 'signingSecret' | 'kinds'>, apiKey: string, jobId: string | null): Promise<MintedToken> {
  const found = await authenticateCaller(deps.store, `Bearer ${apiKey}`)
  const caller: Caller = { ...found, token: null, keyId: found.accountRead ? keyIdOf(apiKey) : null }
  if (jobId === null) return mintToken(deps, caller, { submit: [...deps.kinds.keys()] }, ['submit'], DEV_TOKEN_TTL_SECONDS)
  if (!JOB_ID_PATTERN.test(jobId)) throw invalidRequest('"job" is not a job id.', [{ path: 'query.job', message: 'not a job id' }])
  return mintToken(deps, caller, { job: jobId }, ['read', 'cancel'], DEV_TOKEN_TTL_SECONDS)
}
