import type { Config, Context } from '@netlify/functions'
import { authenticate } from '../../lib/accounts/api-keys.ts'
import { allowMethods, json, respond } from '../../lib/http/http.ts'
import { parseFeedQuery, readFeed } from '../../lib/jobs/read.ts'
import { assetLinks, withEventAssetLinks } from '../../lib/assets/links.ts'
import { appFor, assetLinkKey, log } from '../app.ts'

/** GET /api/jobs/:id/events?after=&limit=&wait=: the event feed, for polling and long-polling. */
export default async (req: Request, context: Context) =>
  respond(log, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const account = await authenticate(deps.store, req.headers.get('authorization'))
    const query = parseFeedQuery(new URL(req.url).searchParams)
    const { retryAfter, ...feed } = await readFeed(deps, account, context.params.id ?? '', query, req.signal)
    const events = withEventAssetLinks(feed.events, assetLinks(assetLinkKey(), account, deps.clock.now()))
    return json({ ...feed, events }, 200, feed.done ? {} : { 'Retry-After': String(retryAfter) })
  })

export const config: Config = { path: '/api/jobs/:id/events' }
