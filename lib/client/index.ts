/**
 * A small, dependency-free client for the durable jobs HTTP API, for browsers
 * and Node (ESM). Bundled to `public/client.js` by `scripts/build-client.ts`.
 *
 * ```js
 * const client = createClient({ apiKey })   // on your backend; in a browser: createClient({ token })
 * const { joined, job } = await client.submitJob('summarize', { text })
 * for await (const item of client.watchJob(job.jobId, { signal })) {
 *   if (item.truncated) continue            // events were dropped by the log cap
 *   render(item)                            // every event once, in seq order; the last one is terminal
 * }
 * ```
 */
import { type DownloadOptions, downloadInParts } from './download.ts'
import { ApiError, parseRetryAfter } from './errors.ts'
import type { ClientClock, Feed, Job, JobEvent, LockHolder, SubmitResult, SubmittedJob, WatchItem } from './types.ts'

import { type ConnectionState, type EventSourceConstructor, watchByEventSource } from './sse.ts'

export { ApiError, parseRetryAfter } from './errors.ts'
export { AssetIntegrityError, DOWNLOAD_PART_BYTES, type DownloadOptions } from './download.ts'
export type { ConnectionState, EventSourceConstructor, EventSourceLike } from './sse.ts'
export { type JobSnapshot, type JobStore, createJobStore } from './store.ts'
export type * from './types.ts'

/**
 * The credential, sent as `Authorization: Bearer …`: an API key (keep it on
 * a server), or a browser token (`djt_…`: a submit's `watchToken`, or one
 * minted with `POST /api/tokens`), which can do only what its scope allows.
 */
export type ClientCredential = { apiKey: string; token?: never } | { token: string; apiKey?: never }

export type ClientOptions = ClientSettings & ClientCredential

export interface ClientSettings {
  /** Origin (and optional path prefix) of the API. Default `''`: same origin, for pages served by the site itself. Required in Node. */
  baseUrl?: string
  /** Default: the global `fetch`. */
  fetch?: typeof fetch
  /** For `watchJob`'s `sse` transport. Default: the global `EventSource` (browsers). */
  EventSource?: EventSourceConstructor
  /** Default: `Date.now` and `setTimeout`. Tests inject one that records sleeps. */
  clock?: ClientClock
  /** A number in [0, 1) for the backoff jitter. Default `Math.random`. */
  random?: () => number
  /**
   * Retry delays of `watchJob`: attempt n (from 0) waits a uniformly random
   * time in [0, min(maxMs, baseMs · 2ⁿ)] ("full jitter"), and never less than
   * the server's `Retry-After`. Every delay, `Retry-After` included, is capped
   * at `maxMs`. Defaults: 500 ms and 30 s.
   */
  backoff?: { baseMs?: number; maxMs?: number }
}

export interface SubmitOptions {
  /** The caller's id for the task this job belongs to (1–128 of `A-Z a-z 0-9 . _ : -`). */
  sourceTaskId?: string
  /** The caller's own id for this job (same alphabet). */
  clientJobId?: string
  /** Sent as `Idempotency-Key`: a retried submit with the same key and body returns the same job (`replayed: true`). */
  idempotencyKey?: string
  signal?: AbortSignal
}

export interface WatchOptions {
  /** Resume after this seq (the last event you already have). Default 0: replay from the start. */
  after?: number
  /** Aborting stops the watch at once: the iterator rejects with `signal.reason`. */
  signal?: AbortSignal
  /** Long-poll time per request, 0–20 s. Default 20. */
  waitSeconds?: number
  /**
   * `sse`: the `/stream` endpoint through `EventSource` (needs a token: it
   * goes in the URL, as EventSource sends no headers); `poll`: the long-poll.
   * Default `sse` where `EventSource` exists and the client holds a token.
   */
  transport?: 'sse' | 'poll'
  /** Told when the connection opens and when it is lost and being retried. */
  onConnection?: (state: ConnectionState) => void
}

export interface Client {
  /**
   * Submits a job. Resolves `{ joined: false, job }` when it was accepted
   * (202, or 200 for an idempotent replay), or `{ joined: true, job: holder }`
   * when another live job of yours already works on the same resource (409
   * `resource_locked`): watch that job instead, so a double click joins the
   * running job. Any other error answer rejects with an {@link ApiError}.
   */
  submitJob(kind: string, input: Record<string, unknown>, options?: SubmitOptions): Promise<SubmitResult>
  /** The job as its client sees it. 404 `not_found` for an unknown id or another account's job. */
  getJob(jobId: string, options?: { signal?: AbortSignal }): Promise<Job>
  /**
   * Cancels a job: a queued one at once (status `canceled`), a running one is
   * asked to stop (`cancelRequested: true`; its terminal `canceled` event
   * follows in the feed). A finished job rejects with 409 `job_finished`.
   * 409 `job_busy` (a busy worker kept winning the write) is retried up to 5
   * times, waiting at least its `Retry-After`, before it rejects.
   */
  cancelJob(jobId: string, options?: { signal?: AbortSignal }): Promise<Job>
  /**
   * The job's events as an async iterator: over the SSE stream with
   * `EventSource` (the default for a token client where it exists; see
   * `transport`), else the feed's long-poll. What follows holds for both;
   * the stream reconnects by itself, and goes on by long-poll if it gives up.
   *
   * - Yields every event after `after` exactly once, in seq order, and ends
   *   after the terminal event (`done`, `error` or `canceled`).
   * - Network errors, 408, 429 and 5xx are retried forever with capped,
   *   jittered exponential backoff (and at least the server's `Retry-After`),
   *   resuming from the last cursor; events are also deduplicated by seq.
   *   Between successful polls it waits what `Retry-After` asks (capped).
   * - Other error answers (401, 404, 400 `invalid_cursor`) reject with an {@link ApiError}.
   * - Abort: rejects promptly with `signal.reason` (an `AbortError` DOMException by default).
   *   Leaving the loop early (`break`) simply ends it.
   * - If the log cap dropped events not read yet, yields a {@link TruncatedMarker}
   *   (`item.truncated` set) before the events that follow the gap.
   */
  watchJob(jobId: string, options?: WatchOptions): AsyncGenerator<WatchItem, void, undefined>
  /**
   * Downloads a file a job generated (`GET /api/assets/:id`, with the API key)
   * as a `Blob` typed by its `Content-Type`. Takes the asset id or the `url` a
   * job lists (`/api/assets/asset_…`, signed or not, also with this client's
   * `baseUrl` in front); anything else throws a `TypeError`, so the key is
   * never sent to another address.
   *
   * A file within one part (8 MiB, `partBytes`) takes one request; a larger
   * one is fetched part by part with `Range` and `If-Range`, each part retried
   * on network errors, 408, 429 and 5xx. The bytes are checked against the
   * file's sha256 (its ETag): a mismatch rejects with {@link AssetIntegrityError}.
   * Other error answers reject with an {@link ApiError}: 404 `not_found` for an
   * unknown, expired or another account's file.
   */
  downloadAsset(assetIdOrUrl: string, options?: DownloadOptions): Promise<Blob>
  /** One API request: JSON in, parsed JSON out; error answers reject with an {@link ApiError}. */
  request<T>(method: string, path: string, init?: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal }): Promise<T>
}

/** The clock used when none is injected: real time, sleeps that end on abort. */
export const realClock: ClientClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const onAbort = () => {
        clearTimeout(timer)
        reject(signal!.reason)
      }
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }, ms)
      signal?.addEventListener('abort', onAbort, { once: true })
    }),
}

/** Creates a client bound to one API key or token. */
export function createClient(options: ClientOptions): Client {
  const credential = options.apiKey ?? options.token
  if (typeof credential !== 'string' || credential === '') throw new TypeError('createClient needs { apiKey } or { token }')
  const baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '')
  const doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init))
  const clock = options.clock ?? realClock
  const random = options.random ?? Math.random
  const baseMs = options.backoff?.baseMs ?? 500
  const maxMs = options.backoff?.maxMs ?? 30_000
  const jobPath = (jobId: string, rest = '') => `/api/jobs/${encodeURIComponent(jobId)}${rest}`
  const assetPath = (assetIdOrUrl: string) => {
    const path = baseUrl && assetIdOrUrl.startsWith(`${baseUrl}/`) ? assetIdOrUrl.slice(baseUrl.length) : assetIdOrUrl
    const match = ASSET_PATH.exec(path)
    const assetId = match?.[1] ?? path
    if (!ASSET_ID.test(assetId)) throw new TypeError(`Not an asset id or asset URL: ${JSON.stringify(assetIdOrUrl)}`)
    return `/api/assets/${assetId}${match?.[2] ?? ''}`
  }

  const send = (method: string, path: string, init: { body?: unknown; headers?: Record<string, string>; signal?: AbortSignal | undefined } = {}) =>
    doFetch(`${baseUrl}${path}`, {
      method,
      headers: {
        Accept: 'application/json',
        Authorization: `Bearer ${credential}`,
        ...(init.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...init.headers,
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    })

  async function request<T>(method: string, path: string, init: Parameters<typeof send>[2] = {}): Promise<T> {
    const res = await send(method, path, init)
    if (!res.ok) throw await ApiError.from(res, clock.now())
    return (await res.json()) as T
  }

  /** Delay before retry number `attempt` (from 0): full jitter, at least `Retry-After`, at most `maxMs`. */
  const retryDelay = (attempt: number, retryAfterMs: number | null) =>
    Math.min(maxMs, Math.max(retryAfterMs ?? 0, random() * Math.min(maxMs, baseMs * 2 ** attempt)))

  /** The long-poll transport of `watchJob`. */
  async function* pollJob(jobId: string, { after = 0, signal, waitSeconds = 20, onConnection }: WatchOptions): AsyncGenerator<WatchItem, void, undefined> {
    let cursor = after
    let lastSeq = after
    let failures = 0
    for (;;) {
      signal?.throwIfAborted()
      let feed: Feed
      let pause: number | null
      try {
        const res = await send('GET', `${jobPath(jobId, '/events')}?after=${cursor}&wait=${waitSeconds}`, { signal })
        if (!res.ok) {
          const error = await ApiError.from(res, clock.now())
          if (!retryable(res.status)) throw error
          await clock.sleep(retryDelay(failures++, error.retryAfter === null ? null : error.retryAfter * 1000), signal)
          continue
        }
        pause = parseRetryAfter(res.headers.get('retry-after'), clock.now())
        feed = (await res.json()) as Feed // a connection dropped mid-body throws here: retried below
      } catch (error) {
        if (signal?.aborted) throw signal.reason
        if (error instanceof ApiError) throw error
        onConnection?.('reconnecting')
        // The request or its answer was lost: nothing was consumed, ask again from the same cursor.
        await clock.sleep(retryDelay(failures++, null), signal)
        continue
      }
      if (failures > 0) onConnection?.('open')
      failures = 0
      if (feed.truncated) yield { type: 'truncated', truncated: { droppedBefore: feed.truncated.droppedBefore, firstSeq: feed.firstSeq } }
      for (const event of feed.events as JobEvent[]) {
        if (event.seq <= lastSeq) continue // a guard: the cursor already prevents repeats
        lastSeq = event.seq
        yield event
      }
      cursor = Math.max(cursor, feed.next)
      if (feed.done) return
      if (pause) await clock.sleep(Math.min(pause, maxMs), signal)
    }
  }

  return {
    request,

    async submitJob(kind, input, { sourceTaskId, clientJobId, idempotencyKey, signal } = {}) {
      const res = await send('POST', '/api/jobs', {
        body: { kind, input, ...(sourceTaskId !== undefined ? { sourceTaskId } : {}), ...(clientJobId !== undefined ? { clientJobId } : {}) },
        headers: idempotencyKey !== undefined ? { 'Idempotency-Key': idempotencyKey } : {},
        signal,
      })
      if (res.ok) {
        const job = (await res.json()) as Omit<SubmittedJob, 'replayed'>
        return { joined: false, job: { ...job, replayed: res.headers.get('idempotent-replayed') === 'true' } }
      }
      const error = await ApiError.from(res, clock.now())
      const holder = (error.body as { holder?: LockHolder } | null)?.holder
      if (error.status === 409 && error.code === 'resource_locked' && holder?.jobId) return { joined: true, job: holder }
      throw error
    },

    getJob: (jobId, { signal } = {}) => request<Job>('GET', jobPath(jobId), { signal }),

    async cancelJob(jobId, { signal } = {}) {
      for (let attempt = 0; ; attempt++) {
        try {
          return await request<Job>('POST', jobPath(jobId, '/cancel'), { signal })
        } catch (error) {
          // 409 job_busy: the worker wrote in between every try; ask again as the server suggests.
          if (!(error instanceof ApiError && error.code === 'job_busy') || attempt >= CANCEL_RETRIES) throw error
          await clock.sleep(retryDelay(attempt, error.retryAfter === null ? null : error.retryAfter * 1000), signal)
        }
      }
    },

    async *watchJob(jobId, watch = {}) {
      const EventSource = options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource
      const transport = watch.transport ?? (EventSource && options.token ? 'sse' : 'poll')
      let after = watch.after ?? 0
      if (transport === 'sse') {
        if (!EventSource) throw new TypeError('watchJob: transport "sse" needs EventSource (a browser, or the client option EventSource)')
        if (!options.token) throw new TypeError('watchJob: transport "sse" needs a client made with { token }: EventSource cannot send an API key')
        const url = `${baseUrl}${jobPath(jobId, '/stream')}?as=message&after=${after}&token=${encodeURIComponent(options.token)}`
        const outcome = yield* watchByEventSource(EventSource, url, after, watch.signal, watch.onConnection)
        if (outcome.ended) return
        after = outcome.lastSeq // the stream gave up (refused, or over): the long-poll says why, or finishes
      }
      yield* pollJob(jobId, { ...watch, after })
    },

    async downloadAsset(assetIdOrUrl, options = {}) {
      const path = assetPath(assetIdOrUrl)
      return downloadInParts(
        {
          get: (headers, signal) => send('GET', path, { headers, signal }),
          now: () => clock.now(),
          retry: async (attempt, error, retryAfterMs) => {
            if (attempt >= DOWNLOAD_RETRIES) throw error
            await clock.sleep(retryDelay(attempt, retryAfterMs), options.signal)
          },
        },
        options,
      )
    },
  }
}

/** `/api/assets/<id>`, as a job lists its files, with its signed link's query when it has one. */
const ASSET_PATH = /^\/api\/assets\/([^/?#]*)(\?exp=\d{1,12}&sig=[A-Za-z0-9_-]{43})?$/
/** How many times one part of a download is asked again after a network error, 408, 429 or 5xx. */
const DOWNLOAD_RETRIES = 4
/** The shape of an asset id, loosely: only characters that need no escaping in a path. */
const ASSET_ID = /^asset_[0-9A-Za-z]{1,100}$/

/** How many times `cancelJob` asks again after 409 `job_busy`. */
const CANCEL_RETRIES = 5

const retryable = (status: number) => status === 408 || status === 429 || status >= 500
