/** A job's events as Server-Sent Events (`EventSource`). */
import { z } from 'zod'
import { IssueSchema, defineRoute } from '../openapi.ts'

const CURSOR = z.string().regex(/^\d{1,9}$/)

/** The stream's query; `streamCursor` and `streamUnnamed` (jobs/stream.ts) read the same, and refuse anything else there with a 400. */
const StreamQuerySchema = z.object({
  after: CURSOR.optional().describe('Start after this seq when there is no `Last-Event-ID` (default 0: the whole log).'),
  as: z.literal('message').optional().describe('`message`: send every event without its `event:` line, so `onmessage` gets them all.'),
})

export const streamRoutes = [
  defineRoute({
    method: 'GET',
    path: '/api/jobs/:id/stream',
    operationId: 'streamJobEvents',
    summary: 'A job’s events as Server-Sent Events',
    description:
      'The feed’s events, for `EventSource`: each as `id: <seq>`, `event: <type>`, `data: <the event as JSON>`, after a `retry:` hint, with a `: heartbeat` comment after 10 s without anything else. A response closes inside the function’s time limit (`STREAM_LIMIT_SECONDS`, 25 s by default); `EventSource` reconnects with `Last-Event-ID` and the stream goes on after that seq, none lost or repeated. After the terminal event comes `event: end` and the close; a reconnect after the end answers 204, which stops `EventSource`. Give `EventSource` the submit’s `watchToken` as `?token=`, never an API key.',
    tags: ['jobs'],
    auth: 'caller',
    params: { id: 'The job id (`job_…`), as `POST /api/jobs` answered it.' },
    query: StreamQuerySchema,
    headers: { 'Last-Event-ID': { description: 'What `EventSource` sends on a reconnect: the last seq it got. Wins over `after`.', schema: CURSOR } },
    responses: {
      200: {
        description: 'The stream: events as they are written, until the terminal event or the time limit.',
        media: 'text/event-stream',
        headers: { 'Cache-Control': { description: '`no-cache, no-transform`', required: true } },
      },
      204: { description: 'The job is over and every event was delivered: stop (`EventSource` does).' },
      400: {
        description: 'A malformed `Last-Event-ID`, `after` or `as` (`invalid_request`), or a cursor past the end of the log (`invalid_cursor`).',
        errors: ['invalid_request', 'invalid_cursor'],
        extra: { issues: z.array(IssueSchema).optional() },
      },
      404: { description: 'No such job (or another account’s, or one the token does not cover).', errors: ['not_found'] },
    },
  }),
]
