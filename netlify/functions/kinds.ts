import type { Config, Context } from '@netlify/functions'
import { allowMethods, json } from '../../lib/http/http.ts'
import { kindCatalog } from '../../lib/kinds/catalog.ts'
import { jobKinds, serveApi } from '../app.ts'

/**
 * GET /api/kinds: the job kinds with their input JSON Schema, cost and lock.
 * No key needed: it describes the API (as the OpenAPI document does), reads
 * no storage and names no account, and the demo builds its form from it.
 */
export default async (req: Request, _context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    return json(kindCatalog(jobKinds()), 200, { 'Cache-Control': 'public, max-age=300' })
  })

export const config: Config = { path: '/api/kinds' }
