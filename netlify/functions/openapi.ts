import type { Config, Context } from '@netlify/functions'
import { allowMethods, json, respond } from '../../lib/http/http.ts'
import { openApiDocument } from '../../lib/http/openapi.ts'
import { apiRoutes } from '../../lib/http/routes/index.ts'
import { jobKinds, log } from '../app.ts'

/** GET /api/openapi.json: the OpenAPI 3.1 document of this API (no key needed). */
export default async (req: Request, _context: Context) =>
  respond(log, async () => {
    allowMethods(req, ['GET'])
    return json(openApiDocument(apiRoutes, jobKinds()), 200, { 'Cache-Control': 'public, max-age=300' })
  })

export const config: Config = { path: '/api/openapi.json' }
