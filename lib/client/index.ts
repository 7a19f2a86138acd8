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
import { downloadInParts } from './download.ts'
import { ApiError, parseRetryAfter } from './errors.ts'
import type { ClientClock, Feed, Job, JobEvent, LockHolder, SubmittedJob, WatchItem } from './types.ts'
import type { Client, ClientOptions, WatchOptions } from './contract.ts'

import { type EventSourceConstructor, watchByEventSource } from './sse.ts'

export { ApiError, parseRetryAfter } from './errors.ts'
export { AssetIntegrityError, DOWNLOAD_PART_BYTES, type DownloadOptions } from './download.ts'
export type { ConnectionState, EventSourceConstructor, EventSourceLike } from './sse.ts'
export { type JobSnapshot, type JobStore, createJobStore } from './store.ts'
export type * from './types.ts'
export type * from './contract.ts'

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

    async submitJob(kind, input, { sourceTaskId, clientJobId, onBusy, idempotencyKey, signal } = {}) {
      const res = await send('POST', '/api/jobs', {
        body: { kind, input, ...(sourceTaskId !== undefined ? { sourceTaskId } : {}), ...(clientJobId !== undefined ? { clientJobId } : {}), ...(onBusy !== undefined ? { onBusy } : {}) },
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
