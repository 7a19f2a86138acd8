/**
 * Wiring, in one place: environment, the Blobs store, clock, ids, job kinds.
 * Function files call `appFor(req)` and pass what it returns into `lib`.
 */
import { getStore } from '@netlify/blobs'
import { systemClock } from '../lib/clock.ts'
import { DEFAULT_SETTINGS, type Deps, type Logger, type Settings } from '../lib/deps.ts'
import { randomIds } from '../lib/ids.ts'
import { type JobKind, type KindRegistry, kindRegistry } from '../lib/kinds/define.ts'
import { productionKinds } from '../lib/kinds/index.ts'
import { MIN_SECRET_LENGTH, signWorkerRequest } from '../lib/signing.ts'
import { netlifyBlobsPort } from '../lib/storage/netlify-blobs.ts'
import { netlifyBlobsAssetPort } from '../lib/storage/netlify-blobs-assets.ts'
import { MIN_MAX_EVENTS } from '../lib/events.ts'

/** The Blobs store holding all job state. */
export const STORE_NAME = 'durable-jobs'
/** The Blobs store holding generated files (assets), apart from job state. */
export const ASSET_STORE_NAME = 'generated'
export const WORKER_PATH = '/.netlify/functions/worker-background'

let registry: KindRegistry = kindRegistry(productionKinds)

/** Adds job kinds next to the production ones (tests register slow, failing, crashing kinds). */
export function registerJobKinds(kinds: readonly JobKind<any, any>[]) {
  registry = kindRegistry([...productionKinds, ...kinds])
}

export const log: Logger = {
  info: (message, fields) => console.log(JSON.stringify({ level: 'info', message, ...fields })),
  error: (message, fields) => console.error(JSON.stringify({ level: 'error', message, ...fields })),
}

export class MisconfiguredError extends Error {
  override name = 'MisconfiguredError'
}

/** The signing secret shared by submit and worker; refuses to run without a strong one. */
export function signingSecret(env = process.env): string {
  const secret = env.JOBS_SIGNING_SECRET ?? ''
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new MisconfiguredError(`JOBS_SIGNING_SECRET must be set to at least ${MIN_SECRET_LENGTH} characters`)
  }
  return secret
}

export function settingsFrom(env = process.env): Settings {
  const seconds = (name: string, fallbackMs: number, min: number) => {
    const raw = env[name]
    if (raw === undefined || raw === '') return fallbackMs
    const value = Number(raw)
    if (!Number.isFinite(value) || value < min) throw new MisconfiguredError(`${name} must be a number ≥ ${min}`)
    return value * 1000
  }
  const maxEvents = Number(env.EVENT_LOG_MAX_EVENTS ?? DEFAULT_SETTINGS.maxEvents)
  if (!Number.isInteger(maxEvents) || maxEvents < MIN_MAX_EVENTS) {
    throw new MisconfiguredError(`EVENT_LOG_MAX_EVENTS must be an integer ≥ ${MIN_MAX_EVENTS}`)
  }
  const maxAssetBytes = Number(env.MAX_GENERATED_ASSET_BYTES || DEFAULT_SETTINGS.maxAssetBytes)
  if (!Number.isSafeInteger(maxAssetBytes) || maxAssetBytes < 1) {
    throw new MisconfiguredError('MAX_GENERATED_ASSET_BYTES must be a whole number of bytes ≥ 1')
  }
  return {
    ...DEFAULT_SETTINGS,
    retentionMs: seconds('JOB_RETENTION_HOURS', DEFAULT_SETTINGS.retentionMs / 3600, 0) * 3600,
    lockTtlMs: seconds('LOCK_TTL_SECONDS', DEFAULT_SETTINGS.lockTtlMs, 1),
    heartbeatTimeoutMs: seconds('HEARTBEAT_TIMEOUT_SECONDS', DEFAULT_SETTINGS.heartbeatTimeoutMs, 1),
    heartbeatIntervalMs: seconds('HEARTBEAT_INTERVAL_SECONDS', DEFAULT_SETTINGS.heartbeatIntervalMs, 1),
    queuedTimeoutMs: seconds('QUEUED_TIMEOUT_SECONDS', DEFAULT_SETTINGS.queuedTimeoutMs, 1),
    maxEvents,
    maxAssetBytes,
    assetRetentionMs: seconds('ASSET_RETENTION_HOURS', DEFAULT_SETTINGS.assetRetentionMs / 3600, 0) * 3600,
  }
}

/** Everything `lib` needs to serve one request. */
export function appFor(req: Request, env = process.env): Deps {
  const origin = new URL(req.url).origin
  return {
    store: netlifyBlobsPort(getStore({ name: STORE_NAME, consistency: 'strong' })),
    assets: netlifyBlobsAssetPort(getStore({ name: ASSET_STORE_NAME, consistency: 'strong' })),
    clock: systemClock,
    ids: randomIds,
    kinds: registry,
    settings: settingsFrom(env),
    log,
    // Always the deploy's own origin: process.env.URL is the production site even in previews.
    invokeWorker: async (jobId) => {
      const body = JSON.stringify({ jobId })
      const res = await fetch(new URL(WORKER_PATH, origin), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...signWorkerRequest(signingSecret(env), body, Date.now()) },
        body,
      })
      await res.body?.cancel()
      if (res.status >= 300) throw new Error(`worker answered ${res.status}`)
    },
  }
}
