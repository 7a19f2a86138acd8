import type { Config, Context } from '@netlify/functions'
import { assetLinks, withEventAssetLinks } from '../../lib/assets/links.ts'
import { allowMethods } from '../../lib/http/http.ts'
import { DEFAULT_HEARTBEAT_MS, DEFAULT_RETRY_MS, openJobStream, streamCursor, streamUnnamed } from '../../lib/jobs/stream.ts'
import { authenticateRequest, viewerFor } from '../../lib/tokens/caller.ts'
import { viewerAccount } from '../../lib/tokens/viewer.ts'
import { appFor, assetLinkKey, serveApi } from '../app.ts'

/**
 * GET /api/jobs/:id/stream: the event feed as Server-Sent Events. Takes a key
 * or token in `Authorization`, or a token as `?token=` (EventSource sends no
 * headers); `?as=message` sends events unnamed, for `onmessage`. Resumes after `Last-Event-ID` or `?after=`; closes inside the
 * function's time limit; 204 once the job is over and everything was delivered.
 */
export default async (req: Request, context: Context) =>
  serveApi(req, async () => {
    allowMethods(req, ['GET'])
    const deps = appFor(req)
    const jobId = context.params.id ?? ''
    const viewer = viewerFor(await authenticateRequest(deps, req), 'read', { jobId })
    const url = new URL(req.url)
    const after = streamCursor(url, req.headers)
    // Links are minted per response, so a reconnect brings fresh ones.
    const links = assetLinks(assetLinkKey(), viewerAccount(viewer), deps.clock.now())
    const options = {
      limitMs: deps.settings.streamLimitMs,
      heartbeatMs: DEFAULT_HEARTBEAT_MS,
      retryMs: DEFAULT_RETRY_MS,
      unnamed: streamUnnamed(url),
      present: <E extends { type: string; data: unknown }>(events: E[]) => withEventAssetLinks(events, links),
    }
    const stream = await openJobStream(deps, viewer, jobId, after, options, req.signal)
    if (stream.ended) return new Response(null, { status: 204, headers: { 'Cache-Control': 'no-store' } })
    return new Response(stream.body, {
      status: 200,
      headers: { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache, no-transform', 'X-Accel-Buffering': 'no' },
    })
  })

export const config: Config = { path: '/api/jobs/:id/stream' }
