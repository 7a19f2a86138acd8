import type { Config, Context } from '@netlify/functions'
import { allowMethods, json } from '../../lib/http/http.ts'
import { parseFeedQuery, readFeed } from '../../lib/jobs/read.ts'
import { authenticateRequest, viewerFor } from '../../lib/tokens/caller.ts'
import { appFor, serveApi } from '../app.ts'

/** GET /api/jobs/:id/events?after=&limit=&wait=: the event feed, for polling and long-polling. */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const jobId = context.params.id ?? ''
    const viewer = viewerFor(await authenticateRequest(deps, req), 'read', { jobId })
    const query = parseFeedQuery(new URL(req.url).searchParams)
    const { retryAfter, ...feed } = await readFeed(deps, viewer, jobId, query, req.signal)
    return json(feed, 200, feed.done ? {} : { 'Retry-After': String(retryAfter) })
  })

export const config: Config = { path: '/api/jobs/:id/events' }
