import type { Clock } from './clock.ts'
import type { IdSource } from './ids.ts'
import type { KindRegistry } from '../kinds/define.ts'
import type { BlobPort } from '../storage/port.ts'
import type { AssetPort } from '../storage/asset-port.ts'
import type { JobState } from './types.ts'

/** Tunable behaviour, with the defaults the README documents. */
export interface Settings {
  /** How long a finished job (and its events) stays readable. */
  retentionMs: number
  /** Lock time-to-live: just past the background function's 15-minute cap. */
  lockTtlMs: number
  /** Event log cap; older pages are dropped past it. */
  maxEvents: number
  /** A running job whose worker has not written for this long is reaped. */
  heartbeatTimeoutMs: number
  /** How often an otherwise quiet worker proves it is alive. */
  heartbeatIntervalMs: number
  /** A queued job not claimed by then is reaped; covers Netlify's retries at +1 and +3 min. */
  queuedTimeoutMs: number
  /** Largest accepted request body. */
  maxBodyBytes: number
  /** Time the reaper may spend per run (scheduled functions stop at 30 s). */
  reaperBudgetMs: number
  /** Largest file a job may save; checked by the worker before anything is written. */
  maxAssetBytes: number
  /** How long a generated file stays downloadable; it outlives its job's record. */
  assetRetentionMs: number
  /** An event stream closes after this long, inside the function's time limit; the client reconnects. */
  streamLimitMs: number
  /**
   * A worker that has run this long hands its job over to a fresh invocation
   * before the next step it has not stored yet (jobs/continuation.ts). Inside
   * the background function's 15 minutes, with room for the step that runs last.
   */
  invocationLimitMs: number
  /** Jobs one account may run at once (ACCOUNT_MAX_RUNNING); more wait in its line. null: no limit. */
  accountMaxRunning: number | null
  /** A retry wait up to this long is slept by the invocation that failed (if it has the time left); a longer one goes to the dispatcher. */
  retrySleepLimitMs: number
  /** Development only: webhooks may go to plain-http localhost and private addresses (see webhooks/target.ts). */
  webhookAllowPrivateTargets: boolean
}

export const DEFAULT_SETTINGS: Settings = {
  retentionMs: 24 * 3600_000,
  lockTtlMs: 16 * 60_000,
  maxEvents: 1000,
  heartbeatTimeoutMs: 2 * 60_000,
  heartbeatIntervalMs: 15_000,
  queuedTimeoutMs: 5 * 60_000,
  maxBodyBytes: 4 * 1024 * 1024,
  reaperBudgetMs: 20_000,
  maxAssetBytes: 500 * 1024 * 1024,
  assetRetentionMs: 168 * 3600_000,
  streamLimitMs: 25_000,
  invocationLimitMs: 14 * 60_000,
  accountMaxRunning: null,
  retrySleepLimitMs: 10_000,
  webhookAllowPrivateTargets: false,
}

/** Where a worker request goes; the HTTP version lives in the function adapter. */
export type InvokeWorker = (jobId: string) => Promise<void>

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void
  error(message: string, fields?: Record<string, unknown>): void
}

export const silentLogger: Logger = { info() {}, error() {} }

/** Everything the domain needs from outside, passed in by the adapters. */
export interface Deps {
  store: BlobPort
  /** Generated files (the `generated` store), apart from job state. */
  assets: AssetPort
  clock: Clock
  ids: IdSource
  kinds: KindRegistry
  settings: Settings
  invokeWorker: InvokeWorker
  log: Logger
  /** Uniform in [0, 1): the jitter of retry waits. Math.random where absent; seeded in the simulation. */
  random?: () => number
  /** JOBS_SIGNING_SECRET: each purpose (browser tokens, asset links) derives its own key with `purposeKey`. */
  signingSecret: string
  /**
   * Told of each job as it is settled, to keep the operator console's history
   * (jobs/history.ts); wired in netlify/app.ts, absent where nobody reads it.
   */
  recordFinished?: (deps: Pick<Deps, 'store' | 'settings' | 'log' | 'clock'>, job: JobState) => Promise<void>
}
