/**
 * Wiring, in one place: environment, the Blobs stores (per deploy context), clock, ids, job kinds.
 * Function files call `appFor(req)` and pass what it returns into `lib`.
 */
import { getStore } from '@netlify/blobs'
import { systemClock } from '../lib/core/clock.ts'
import { DEFAULT_SETTINGS, type Deps, type Logger, type Settings } from '../lib/core/deps.ts'
import { randomIds } from '../lib/core/ids.ts'
import { type JobKind, type KindRegistry, kindRegistry } from '../lib/kinds/define.ts'
import { productionKinds } from '../lib/kinds/index.ts'
import { MIN_SECRET_LENGTH, purposeKey, signWorkerRequest } from '../lib/core/signing.ts'
import { netlifyBlobsPort } from '../lib/storage/netlify-blobs.ts'
import { netlifyBlobsAssetPort } from '../lib/storage/netlify-blobs-assets.ts'
import { MIN_MAX_EVENTS } from '../lib/events/log.ts'
import { MAX_ACCOUNT_RUNNING } from '../lib/locks/slots.ts'
import { ApiError } from '../lib/core/errors.ts'
import { CorsConfigError, type CorsPolicy, parseAllowedOrigins, withCors } from '../lib/http/cors.ts'
import { errorResponse, respond } from '../lib/http/http.ts'
import { recordFinishedJob } from '../lib/jobs/history.ts'

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

/** The job kinds this deploy runs: for routes that need nothing else (no storage, no secrets). */
export const jobKinds = (): KindRegistry => registry

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

/** The key asset links are signed with (lib/assets/links.ts), derived from the signing secret. */
export const assetLinkKey = (env = process.env) => purposeKey(signingSecret(env), 'asset-link')

export interface StoreNames {
  jobs: string
  assets: string
}

// Contexts that use the production stores: production itself, and local development
// (`netlify dev` sends no deploy context, or "dev").
const PRODUCTION_STORE_CONTEXTS = new Set(['', 'production', 'dev', 'dev-server'])

/**
 * The deploy context the function runs in. Functions do not get `CONTEXT` at
 * runtime (only URL, SITE_NAME, SITE_ID); Netlify sends the context with each
 * request, and this header is what the v2 Context's `deploy.context` reads.
 */
export function deployContextOf(req: Request, env = process.env): string {
  return (req.headers.get('x-nf-deploy-context') ?? env.CONTEXT ?? '').trim().toLowerCase()
}

/**
 * Blobs stores are site-wide, so without this a Deploy Preview's functions would
 * read and write production's jobs, locks, keys and credits with code that is
 * not production's. Other contexts (deploy-preview, branch-deploy, a branch's
 * own context) get stores of their own, named per context; reaching production's
 * data from one takes JOBS_STORE_SCOPE=production.
 */
export function storeNamesFor(deployContext: string, env = process.env): StoreNames {
  const scope = env.JOBS_STORE_SCOPE ?? ''
  if (scope !== '' && scope !== 'context' && scope !== 'production') {
    throw new MisconfiguredError('JOBS_STORE_SCOPE must be "context" (the default: stores per deploy context) or "production"')
  }
  if (scope === 'production' || PRODUCTION_STORE_CONTEXTS.has(deployContext)) return { jobs: STORE_NAME, assets: ASSET_STORE_NAME }
  // Store names are at most 64 bytes and cannot hold '/'.
  const suffix = deployContext.replace(/[^a-z0-9-]+/g, '-').slice(0, 40)
  return { jobs: `${STORE_NAME}--${suffix}`, assets: `${ASSET_STORE_NAME}--${suffix}` }
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
  // Synchronous functions stop at 30 s locally and 60 s on Netlify.
  const streamLimitMs = seconds('STREAM_LIMIT_SECONDS', DEFAULT_SETTINGS.streamLimitMs, 1)
  if (streamLimitMs > 55_000) throw new MisconfiguredError('STREAM_LIMIT_SECONDS must be at most 55')
  // A background function stops at 15 minutes: the step that starts last needs room to finish.
  const invocationLimitMs = seconds('INVOCATION_LIMIT_SECONDS', DEFAULT_SETTINGS.invocationLimitMs, 1)
  if (invocationLimitMs > 870_000) throw new MisconfiguredError('INVOCATION_LIMIT_SECONDS must be at most 870')
  const maxRunning = env.ACCOUNT_MAX_RUNNING
  const accountMaxRunning = maxRunning === undefined || maxRunning === '' ? null : Number(maxRunning)
  if (accountMaxRunning !== null && (!Number.isInteger(accountMaxRunning) || accountMaxRunning < 1 || accountMaxRunning > MAX_ACCOUNT_RUNNING)) {
    throw new MisconfiguredError(`ACCOUNT_MAX_RUNNING must be a whole number from 1 to ${MAX_ACCOUNT_RUNNING}, or unset for no limit`)
  }
  const retrySleepLimitMs = seconds('RETRY_SLEEP_LIMIT_SECONDS', DEFAULT_SETTINGS.retrySleepLimitMs, 0)
  if (retrySleepLimitMs > 60_000) throw new MisconfiguredError('RETRY_SLEEP_LIMIT_SECONDS must be at most 60')
  return {
    ...DEFAULT_SETTINGS,
    // At least an hour: a finished job must outlive its client job id's reservation and the window in which its charge is looked for.
    retentionMs: seconds('JOB_RETENTION_HOURS', DEFAULT_SETTINGS.retentionMs / 3600, 1) * 3600,
    lockTtlMs: seconds('LOCK_TTL_SECONDS', DEFAULT_SETTINGS.lockTtlMs, 1),
    heartbeatTimeoutMs: seconds('HEARTBEAT_TIMEOUT_SECONDS', DEFAULT_SETTINGS.heartbeatTimeoutMs, 1),
    heartbeatIntervalMs: seconds('HEARTBEAT_INTERVAL_SECONDS', DEFAULT_SETTINGS.heartbeatIntervalMs, 1),
    queuedTimeoutMs: seconds('QUEUED_TIMEOUT_SECONDS', DEFAULT_SETTINGS.queuedTimeoutMs, 1),
    maxEvents,
    maxAssetBytes,
    assetRetentionMs: seconds('ASSET_RETENTION_HOURS', DEFAULT_SETTINGS.assetRetentionMs / 3600, 0) * 3600,
    streamLimitMs,
    invocationLimitMs,
    accountMaxRunning,
    retrySleepLimitMs,
    // `netlify dev` sets NETLIFY_DEV; deployed functions never see it.
    webhookAllowPrivateTargets: env.NETLIFY_DEV === 'true' || env.WEBHOOK_ALLOW_PRIVATE_TARGETS === 'true',
  }
}

function misconfigured(error: Error): ApiError {
  log.error('misconfigured: this deploy refuses every request until its environment is fixed', { problem: error.message })
  return new ApiError(500, 'misconfigured', 'The service is not configured correctly. Its operator has the details in the function log.')
}

/**
 * Every /api route answers through this: the CORS preflight and headers
 * (`ALLOWED_ORIGINS`, see lib/http/cors.ts), around `respond`, which turns
 * whatever the route throws into the error envelope. A new route gets both
 * by wrapping its body in it.
 */
export function serveApi(req: Request, route: () => Promise<Response>, env = process.env): Promise<Response> {
  let policy: CorsPolicy
  try {
    policy = parseAllowedOrigins(env.ALLOWED_ORIGINS)
  } catch (error) {
    if (!(error instanceof CorsConfigError)) throw error
    return Promise.resolve(errorResponse(misconfigured(error)))
  }
  return withCors(req, policy, () => respond(log, route))
}

/**
 * Everything `lib` needs to serve one request. The configuration is checked
 * first, so a misconfigured deploy refuses every request (500 `misconfigured`,
 * the reason in the log only) before it reads or writes anything.
 */
export function appFor(req: Request, env = process.env, deployContext = deployContextOf(req, env)): Deps {
  const origin = new URL(req.url).origin
  let settings: Settings
  let stores: StoreNames
  let secret: string
  try {
    secret = signingSecret(env)
    settings = settingsFrom(env)
    stores = storeNamesFor(deployContext, env)
  } catch (error) {
    if (!(error instanceof MisconfiguredError)) throw error
    throw misconfigured(error)
  }
  return {
    store: netlifyBlobsPort(getStore({ name: stores.jobs, consistency: 'strong' })),
    assets: netlifyBlobsAssetPort(getStore({ name: stores.assets, consistency: 'strong' })),
    clock: systemClock,
    ids: randomIds,
    kinds: registry,
    settings,
    log,
    signingSecret: secret,
    recordFinished: recordFinishedJob,
    // Always the deploy's own origin: process.env.URL is the production site even in previews.
    // The deploy context travels in the signed body: the worker uses the stores this submit wrote to.
    invokeWorker: async (jobId) => {
      const body = JSON.stringify({ jobId, deployContext })
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
