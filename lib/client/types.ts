/** Shapes of the HTTP API as a client sees them (see README "HTTP API"). */
import type { JobAsset } from '../core/types.ts'
import type { PublicJob } from '../jobs/views.ts'

export type JobStatus = 'scheduled' | 'queued' | 'running' | 'retrying' | 'complete' | 'failed' | 'canceled'

/** The public error of a failed job, and of every error response. */
export interface PublicError {
  code: string
  message: string
}

/** One event of a job's log. `seq` starts at 1 and has no gaps. */
export interface JobEvent<T = unknown> {
  seq: number
  type: string
  data: T
  ts: number
  /** Never set on a real event; lets `item.truncated` tell a {@link TruncatedMarker} apart. */
  truncated?: undefined
}

/**
 * Yielded by `watchJob` (before the events that follow it) when the log cap
 * dropped events the watcher had not read yet. Not an event of the job: it has
 * no `seq`. Test `item.truncated`, not `item.type` (a kind may emit its own
 * `truncated` event type).
 */
export interface TruncatedMarker {
  type: 'truncated'
  seq?: undefined
  /** Events before `droppedBefore` are gone; the feed resumes at `firstSeq`. */
  truncated: { droppedBefore: number; firstSeq: number }
}

export type WatchItem<T = unknown> = JobEvent<T> | TruncatedMarker

/**
 * `GET /api/jobs/:id`: the server's own view type, so the two cannot drift
 * (a type-only import; nothing of the server reaches the bundle).
 */
export type Job = PublicJob

/** A file a job produced, as listed on the job and in its `done` event. */
export type { JobAsset }

/** The 202/200 answer of `POST /api/jobs`. */
export interface SubmittedJob {
  jobId: string
  kind: string
  status: JobStatus
  statusUrl: string
  eventsUrl: string
  createdAt: string
  /** A read-only token for this job (status, events, stream, assets), for `createClient({ token })` or `?token=`. */
  watchToken: string
  watchTokenExpiresAt: string
  /** True when an `Idempotency-Key` replayed an earlier submit (HTTP 200). */
  replayed: boolean
  /**
   * Where a queued job waits (1 is next): behind a busy resource (`onBusy: 'queue'`; `ahead` is
   * the job it waits behind, null for a shared resource), or for one of its account's running
   * jobs to end (ACCOUNT_MAX_RUNNING; `ahead` null).
   */
  queue?: { position: number; ahead: string | null; waitingFor: 'resource' | 'account' }
}

/** The live job holding the resource, from a 409 `resource_locked`. */
export interface LockHolder {
  jobId: string
  statusUrl: string
  eventsUrl: string
  expiresAt: string
}

export type SubmitResult = { joined: false; job: SubmittedJob } | { joined: true; job: LockHolder }

/** `GET /api/jobs/:id/events` */
export interface Feed {
  jobId: string
  status: JobStatus
  firstSeq: number
  next: number
  done: boolean
  events: JobEvent[]
  truncated?: { droppedBefore: number }
}

/** Time, injectable so tests decide how long a sleep lasts. */
export interface ClientClock {
  now(): number
  /** Resolves after `ms`, or rejects with `signal.reason` as soon as `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}
