import type { Config, Context } from '@netlify/functions'
import { allowMethods, json } from '../../lib/http/http.ts'
import { type OpenApiDocument, openApiDocument } from '../../lib/http/openapi.ts'
import { apiRoutes } from '../../lib/http/routes/index.ts'
import type { KindRegistry } from '../../lib/kinds/define.ts'
import { jobKinds, serveApi } from '../app.ts'

/** Built once per set of kinds: generating it takes tens of milliseconds. */
const built = new WeakMap<KindRegistry, OpenApiDocument>()

/** GET /api/openapi.json: the OpenAPI 3.1 document of this API (no key needed). */
export default async (req: Request, _context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    const kinds = jobKinds()
    let document = built.get(kinds)
    if (!document) built.set(kinds, (document = openApiDocument(apiRoutes, kinds)))
    return json(document, 200, { 'Cache-Control': 'public, max-age=300' })
  })

export const config: Config = { path: '/api/openapi.json' }
