/**
 * Telling a backend that a job ended: its public view POSTed to the job's
 * webhook URL, signed (sign.ts), at least once.
 *
 * When a job with a webhook is settled, a `webhook` entry is filed in the
 * due-time index at its finish time (jobs/state.ts); the worker also tries
 * at once after it settles, so the usual delay is none and the dispatcher is
 * the safety net (within a minute). Each attempt is recorded in
 * `webhook/<job>` (attempts, outcome, next time), which the operator console
 * shows; a failed attempt is tried again on a backoff schedule through the
 * same index. Every attempt carries the same `webhook-id`, so a receiver
 * that saw it before (an answer lost, two attempts racing) drops it.
 */
import { z } from 'zod'
import type { Deps } from '../core/deps.ts'
import { iso } from '../core/clock.ts'
import { parseRecord } from '../core/records.ts'
import { type JobState, isTerminal } from '../core/types.ts'
import { readState } from '../jobs/state.ts'
import { publicJob } from '../jobs/views.ts'
import { keys } from '../storage/keys.ts'
import type { DueOutcome } from '../schedule/dispatcher.ts'
import { type DueEntry, removeDue } from '../schedule/due-index.ts'
import { WebhookSendError, sendWebhook } from './send.ts'
import { signedHeaders, webhookIdFor, webhookSecretFor } from './sign.ts'
import { redactedUrl } from './target.ts'

/**
 * Waits after each failed attempt: 7 attempts over about 17.6 hours, inside
 * the 24 h a finished job is kept by default (the record of the deliveries
 * goes with the job, and with it any attempt still to come).
 */
export const RETRY_SCHEDULE_MS = [60_000, 5 * 60_000, 30 * 60_000, 2 * 3600_000, 5 * 3600_000, 10 * 3600_000]
export const MAX_DELIVERY_ATTEMPTS = RETRY_SCHEDULE_MS.length + 1

const AttemptSchema = z.object({
  at: z.number(),
  /** The receiver's HTTP status; null when there was no answer. */
  status: z.number().int().nullable(),
  /** Why there was no answer, or which status failed: `timeout`, `connection_failed`, `blocked_address`, `http_500`… */
  error: z.string().nullable(),
  ms: z.number(),
})

export const DeliverySchema = z.object({
  jobId: z.string(),
  webhookId: z.string(),
  state: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.array(AttemptSchema).max(MAX_DELIVERY_ATTEMPTS),
  nextAttemptAt: z.number().nullable(),
})
export type Delivery = z.infer<typeof DeliverySchema>

/** What the operator console shows of a job's webhook. */
export const DeliveryViewSchema = z.object({
  url: z.string(),
  webhookId: z.string(),
  state: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.array(z.object({ at: z.string(), status: z.number().nullable(), error: z.string().nullable(), ms: z.number() })),
  nextAttemptAt: z.string().nullable(),
})

const DONE: DueOutcome = { done: true }

async function readDelivery(deps: Pick<Deps, 'store'>, jobId: string) {
  const key = keys.webhookDelivery(jobId)
  const blob = await deps.store.read(key)
  return blob ? { delivery: parseRecord(key, blob.data, DeliverySchema), version: blob.version } : null
}

/** The console's view of a job's deliveries (null for a job without a webhook). */
export async function deliveryView(deps: Pick<Deps, 'store'>, jobId: string, url: string | undefined): Promise<z.infer<typeof DeliveryViewSchema> | null> {
  if (!url) return null
  const found = (await readDelivery(deps, jobId))?.delivery
  return {
    url: redactedUrl(url),
    webhookId: webhookIdFor(jobId),
    state: found?.state ?? 'pending',
    attempts: (found?.attempts ?? []).map((attempt) => ({ ...attempt, at: iso(attempt.at)! })),
    nextAttemptAt: iso(found?.nextAttemptAt ?? null),
  }
}

/** The due-index handler (and the worker's first try): one attempt if one is due. */
export async function deliverJobWebhook(deps: Deps, entry: Pick<DueEntry, 'id'>, finished?: JobState): Promise<DueOutcome> {
  const jobId = entry.id
  // The worker passes the state it just finished: a terminal state does not change what is sent.
  const state = finished ?? (await readState(deps.store, jobId))?.state
  // Gone (retention) or not a job with a webhook: nothing to tell.
  if (!state || !isTerminal(state.status) || !state.webhookUrl) return DONE
  const url = state.webhookUrl!
  const current = await readDelivery(deps, jobId)
  if (current && current.delivery.state !== 'pending') return DONE
  const now = deps.clock.now()
  if (current?.delivery.nextAttemptAt && current.delivery.nextAttemptAt > now) return { done: false, at: current.delivery.nextAttemptAt }

  const webhookId = webhookIdFor(jobId)
  const body = JSON.stringify({ type: `job.${state.status}`, timestamp: iso(state.finishedAt ?? now), data: publicJob({ state }) })
  const headers = signedHeaders(webhookSecretFor(deps.signingSecret, state.account), webhookId, now, body)
  const started = deps.clock.now()
  let status: number | null = null
  let error: string | null = null
  try {
    status = (await sendWebhook(url, headers, body, { allowPrivateTargets: deps.settings.webhookAllowPrivateTargets })).status
    if (status < 200 || status >= 300) error = `http_${status}`
  } catch (thrown) {
    error = thrown instanceof WebhookSendError ? thrown.reason : 'connection_failed'
  }
  const attempt = { at: now, status, error, ms: Math.max(0, deps.clock.now() - started) }
  const delivered = error === null
  // A blocked address stays blocked, and 410 says the receiver is gone: neither is tried again.
  const final = delivered || error === 'blocked_address' || status === 410
  const outcome = await recordAttempt(deps, jobId, current, attempt, delivered, final)
  deps.log.info('webhook delivery', {
    jobId,
    webhookId,
    attempt: outcome.attempts.length,
    host: new URL(url).host,
    status,
    error,
    outcome: outcome.state,
  })
  return outcome.state === 'pending' && outcome.nextAttemptAt !== null ? { done: false, at: outcome.nextAttemptAt } : DONE
}

/** Sends one dispatcher run has in flight at most: slow receivers must not hold up starts and retries. */
export const MAX_DISPATCHER_SENDS = 8
let dispatcherSends = 0

/**
 * The dispatcher's handler of `webhook` entries: at most MAX_DISPATCHER_SENDS
 * in flight (the rest are filed a minute later), so a receiver that answers
 * slowly, or never, takes at most that share of the run from every other
 * account's delayed starts, hand-offs and retries.
 */
export async function dispatchJobWebhook(deps: Deps, entry: Pick<DueEntry, 'id'>): Promise<DueOutcome> {
  if (dispatcherSends >= MAX_DISPATCHER_SENDS) return { done: false, at: deps.clock.now() + 60_000 }
  dispatcherSends++
  try {
    return await deliverJobWebhook(deps, entry)
  } finally {
    dispatcherSends--
  }
}

/**
 * The worker's try, right after it settled the job: when it is delivered
 * (or given up), the entry the settle filed (`entry`) is removed here, which
 * spares the dispatcher reading the job again.
 */
export async function deliverAfterSettle(deps: Deps, state: JobState, entry: string) {
  const outcome = await deliverJobWebhook(deps, { id: state.jobId }, state)
  if (outcome.done) await removeDue(deps.store, { key: entry })
}

/**
 * Adds an attempt to the job's delivery record, by conditional writes: an
 * attempt that raced ours is kept too, and a delivery another attempt made
 * stays delivered.
 */
async function recordAttempt(
  deps: Deps,
  jobId: string,
  read: Awaited<ReturnType<typeof readDelivery>>,
  attempt: z.infer<typeof AttemptSchema>,
  delivered: boolean,
  final: boolean,
): Promise<Delivery> {
  const key = keys.webhookDelivery(jobId)
  let current = read
  for (let round = 0; round < 5; round++) {
    const base = current?.delivery ?? { jobId, webhookId: webhookIdFor(jobId), state: 'pending' as const, attempts: [], nextAttemptAt: null }
    const attempts = [...base.attempts, attempt].slice(-MAX_DELIVERY_ATTEMPTS)
    const used = base.attempts.length + 1
    const state = base.state === 'delivered' || delivered ? 'delivered' : final || used >= MAX_DELIVERY_ATTEMPTS ? 'failed' : 'pending'
    const nextAttemptAt = state === 'pending' ? attempt.at + RETRY_SCHEDULE_MS[Math.min(used - 1, RETRY_SCHEDULE_MS.length - 1)]! : null
    const next: Delivery = { ...base, state, attempts, nextAttemptAt }
    const data = JSON.stringify(next)
    const written = current ? await deps.store.replace(key, data, current.version) : await deps.store.create(key, data)
    if (written.ok) return next
    current = await readDelivery(deps, jobId)
  }
  // Kept losing: the attempt is not recorded; the entry comes back in a minute and reads again.
  return { jobId, webhookId: webhookIdFor(jobId), state: 'pending', attempts: [], nextAttemptAt: deps.clock.now() + 60_000 }
}
