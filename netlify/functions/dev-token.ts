import type { Config, Context } from '@netlify/functions'
import { notFound } from '../../lib/core/errors.ts'
import { allowMethods, json } from '../../lib/http/http.ts'
import { devToken, devTokensEnabled } from '../../lib/tokens/dev.ts'
import { appFor, deployContextOf, serveApi } from '../app.ts'

/**
 * GET /api/dev/token[?job=<id>]: local development only (see lib/tokens/dev.ts).
 * A short token for the demo page, so the page never holds the API key.
 */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    const url = new URL(req.url)
    const setting = { netlifyDev: process.env.NETLIFY_DEV, apiKey: process.env.DEV_TOKEN_API_KEY, deployContext: deployContextOf(req), hostname: url.hostname, clientIp: context.ip }
    if (!devTokensEnabled(setting)) throw notFound('route')
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    return json(await devToken(deps, setting.apiKey, url.searchParams.get('job')))
  })

export const config: Config = { path: '/api/dev/token' }
