/** What `createClient` takes and what the client it makes offers: the client's public contract. */
import type { DownloadOptions } from './download.ts'
import type { ConnectionState, EventSourceConstructor } from './sse.ts'
import type { ClientClock, Job, SubmitResult, WatchItem } from './types.ts'

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
  /** While another job holds the resource: 'queue' waits in line (the answer has `queue`), 'refuse' joins it (409); the kind's choice by default. */
  onBusy?: 'queue' | 'refuse'
  /** Sent as `Idempotency-Key`: a retried submit with the same key and body returns the same job (`replayed: true`). */
  idempotencyKey?: string
  /** Start later: an ISO time at most 7 days ahead, or a number of seconds from now. */
  runAt?: string
  delaySeconds?: number
  /** Where the server POSTs the job's outcome when it ends (https; API keys only: a token's jobs use the account's default). */
  webhookUrl?: string
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
