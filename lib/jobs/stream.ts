/**
 * A job's events as Server-Sent Events, for `EventSource`.
 *
 * Framing: each event is `id: <seq>`, `event: <type>`, `data: <event JSON>`;
 * the stream's own markers (`truncated`, `end`) carry no `seq` in their data.
 * `EventSource` hands a named event only to listeners of that name, and a
 * kind's event names are not known in advance: with `unnamed` (`?as=message`)
 * events go without their `event:` line, so `onmessage` gets them all.
 * A response lives at most `limitMs` (the function would be stopped at the
 * platform's limit), then closes; `EventSource` reconnects with
 * `Last-Event-ID` and the stream goes on after it, so no event is lost or
 * repeated. After the terminal event comes `event: end` and the close; a
 * reconnect after the end answers 204, which makes `EventSource` stop.
 */
import type { Deps } from '../core/deps.ts'
import { invalidRequest } from '../core/errors.ts'
import type { JobEvent } from '../core/types.ts'
import type { Viewer } from '../tokens/viewer.ts'
import { type PaceSettings, checkPacer } from './pace.ts'
import { type FeedCheck, ownedJobLoader, readFeedOnce } from './read.ts'

export interface StreamOptions {
  /** Close the response after this long; below the platform's synchronous limit. */
  limitMs: number
  /** A comment line after this long without anything else sent, so proxies keep the connection. */
  heartbeatMs: number
  /** The `retry:` hint: how long `EventSource` waits before it reconnects. */
  retryMs: number
  /** Send events without `event: <type>` (the type stays in the data), for `onmessage`. */
  unnamed?: boolean
  pace?: PaceSettings
  /** Applied to each batch before it is sent: the route adds signed asset links here, as the feed does. */
  present?: <E extends { type: string; data: unknown }>(events: E[]) => E[]
}

export const DEFAULT_HEARTBEAT_MS = 10_000
export const DEFAULT_RETRY_MS = 500
/** Events per check: a long backlog goes out in several writes. */
const BATCH = 100

const CURSOR = /^\d{1,9}$/

/** `?as=message`: events as unnamed frames; anything else there is a 400. */
export function streamUnnamed(url: URL): boolean {
  const as = url.searchParams.get('as')
  if (as === null || as === '') return false
  if (as === 'message') return true
  throw invalidRequest('"as" may only be "message" (every event as an unnamed frame, for onmessage).', [
    { path: 'query.as', message: 'expected "message"' },
  ])
}

/**
 * Where the stream starts: after `Last-Event-ID` (what `EventSource` sends on
 * a reconnect, which repeats the first URL), else after `?after=`, else from
 * the start. A malformed value is the caller's error: 400.
 */
export function streamCursor(url: URL, headers: Headers): number {
  const lastEventId = headers.get('last-event-id')
  if (lastEventId !== null && lastEventId.trim() !== '') {
    if (!CURSOR.test(lastEventId.trim())) {
      throw invalidRequest('"Last-Event-ID" must be the seq of an event (a whole number).', [
        { path: 'header.last-event-id', message: 'expected an integer in [0, 999999999]' },
      ])
    }
    return Number(lastEventId.trim())
  }
  const after = url.searchParams.get('after')
  if (after === null || after === '') return 0
  if (!CURSOR.test(after)) {
    throw invalidRequest('"after" must be a whole number from 0 to 999999999.', [
      { path: 'query.after', message: 'expected an integer in [0, 999999999]' },
    ])
  }
  return Number(after)
}

export type JobStream = { ended: true } | { ended: false; body: ReadableStream<Uint8Array> }

/**
 * Opens the stream. The first check happens before any byte is sent, so an
 * unknown job (404) or a cursor past the log (400) is an ordinary error
 * answer; `{ ended: true }` means everything up to the terminal event was
 * already delivered (answer 204).
 */
export async function openJobStream(deps: Deps, viewer: Viewer, jobId: string, after: number, options: StreamOptions, signal?: AbortSignal): Promise<JobStream> {
  const openedAt = deps.clock.now()
  const load = ownedJobLoader(deps, viewer, jobId)
  const check = (cursor: number) => readFeedOnce(deps, load, jobId, { after: cursor, limit: BATCH })
  const first = await check(after)
  if (first.done && first.events.length === 0) return { ended: true }

  const stop = new AbortController()
  const onAbort = () => stop.abort()
  signal?.addEventListener('abort', onAbort, { once: true })
  const frames = follow(deps, first, after, check, openedAt, options, stop.signal)
  const encoder = new TextEncoder()
  const finish = () => {
    stop.abort()
    signal?.removeEventListener('abort', onAbort)
  }
  // Pulled, not pushed: nothing is checked ahead of a reader that is slow to read.
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const next = await frames.next()
          if (!next.done) return controller.enqueue(encoder.encode(next.value))
        } catch (error) {
          // The client reconnects from its last id; nothing is lost by closing.
          if (!stop.signal.aborted) deps.log.error('event stream stopped', { jobId, error: String(error) })
        }
        finish()
        try {
          controller.close()
        } catch {
          // the reader canceled meanwhile
        }
      },
      async cancel() {
        finish()
        await frames.return(undefined)
      },
    },
    { highWaterMark: 0 },
  )
  return { ended: false, body }
}

/** The frames of one response: events as they are found, heartbeats between, the end marker; never past the limit. */
async function* follow(
  deps: Deps,
  first: FeedCheck,
  after: number,
  check: (cursor: number) => Promise<FeedCheck>,
  openedAt: number,
  options: StreamOptions,
  signal: AbortSignal,
): AsyncGenerator<string, void, undefined> {
  const closeAt = openedAt + options.limitMs
  const pacer = checkPacer(options.pace, openedAt)
  let cursor = after
  let feed = first
  yield `retry: ${options.retryMs}\n\n`
  let lastSentAt = deps.clock.now()
  for (;;) {
    let out = feed.truncated ? frame('truncated', { droppedBefore: feed.truncated.droppedBefore, firstSeq: feed.firstSeq }) : ''
    for (const event of options.present ? options.present(feed.events) : feed.events) out += eventFrame(event, options.unnamed === true)
    cursor = feed.next
    if (feed.done) {
      yield out + frame('end', { status: feed.status, lastSeq: cursor })
      return
    }
    if (out) {
      yield out
      lastSentAt = deps.clock.now()
    }
    // A backlog longer than a batch goes on at once; otherwise the pacer decides.
    const now = deps.clock.now()
    const checkAt = now + (feed.events.length === BATCH ? 0 : pacer.next(now, { found: feed.events.length > 0, lastEventAt: feed.lastEventAt }))
    // Sleep until the next check, with heartbeats on the way; never past closeAt.
    for (;;) {
      const now = deps.clock.now()
      if (signal.aborted || now >= closeAt) return
      const heartbeatAt = lastSentAt + options.heartbeatMs
      if (now >= heartbeatAt) {
        yield ': heartbeat\n\n'
        lastSentAt = deps.clock.now()
        continue
      }
      if (now >= checkAt) break
      await deps.clock.sleep(Math.min(checkAt, heartbeatAt, closeAt) - now, signal)
    }
    feed = await check(cursor)
  }
}

const eventFrame = (event: JobEvent, unnamed: boolean) =>
  `id: ${event.seq}\n${unnamed ? '' : `event: ${event.type}\n`}data: ${JSON.stringify(event)}\n\n`
const frame = (type: string, data: unknown) => `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`
