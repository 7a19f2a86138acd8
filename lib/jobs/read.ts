/**
 * Reading and canceling jobs on behalf of an account. Another account's job
 * answers exactly like a job that does not exist, so ids cannot be probed.
 */
import { z } from 'zod'
import type { Deps } from '../core/deps.ts'
import { ApiError, invalidRequest, notFound } from '../core/errors.ts'
import { LogMovedError, jobLog, readEvents } from '../events/log.ts'
import { JOB_ID_PATTERN } from '../core/ids.ts'
import { type StoredState, commitState, initialState, readState, settleFinishedJob } from './state.ts'
import { readSpecEverywhere } from './records.ts'
import { queuePlace } from './queue-place.ts'
import { type JobSpec, isTerminal } from '../core/types.ts'
import { keys } from '../storage/keys.ts'
import { addDue, removeDue } from '../schedule/due-index.ts'
import { FeedSchema, publicJob, specStatus } from './views.ts'
import { isHandedOver } from './continuation.ts'
import { type PaceSettings, checkPacer } from './pace.ts'
import { type Viewer, sees } from '../tokens/viewer.ts'

export type OwnedJob = { stored: StoredState; spec?: undefined } | { stored?: undefined; spec: JobSpec }

/** The viewer's job (an account's, or one a token's scope covers); anything else is a 404 after the same reads. */
export async function loadOwnedJob(deps: Pick<Deps, 'store'>, viewer: Viewer, jobId: string): Promise<OwnedJob> {
  if (!JOB_ID_PATTERN.test(jobId)) throw notFound()
  const stored = await readState(deps.store, jobId)
  if (stored && sees(viewer, stored.state)) return { stored }
  // Both spec keys (started, waiting) at once: the reads are the same wherever the job is.
  const spec = await readSpecEverywhere(deps.store, jobId)
  if (!stored && spec && sees(viewer, spec)) return { spec }
  // Claimed (and maybe finished and cleaned up) between our two reads: its state exists now.
  // Every 404 takes this third read too, another account's job included, so the
  // number of reads (and the time) does not tell whether the id exists.
  const claimed = await readState(deps.store, jobId)
  if (claimed && sees(viewer, claimed.state)) return { stored: claimed }
  throw notFound()
}

export async function getJob(deps: Deps, viewer: Viewer, jobId: string) {
  const job = await loadOwnedJob(deps, viewer, jobId)
  return job.stored ? publicJob({ state: job.stored.state }) : publicJob({ spec: job.spec, queue: await queuePlace(deps, job.spec) })
}

export const MAX_FEED_LIMIT = 1000
export const DEFAULT_FEED_LIMIT = 100
export const MAX_WAIT_SECONDS = 20

export interface FeedQuery {
  after: number
  limit: number
  waitSeconds: number
}

/** The feed's query as the API documents it; `parseFeedQuery` enforces the same bounds. */
export const FeedQuerySchema = z.strictObject({
  after: z.int().min(0).max(999_999_999).optional().describe('Last seq already seen (default 0: from the start).'),
  limit: z.int().min(1).max(MAX_FEED_LIMIT).optional().describe(`Most events to return (default ${DEFAULT_FEED_LIMIT}).`),
  wait: z.int().min(0).max(MAX_WAIT_SECONDS).optional().describe('Seconds to hold the request until an event arrives (long-poll).'),
})

/** Parses `after`, `limit`, `wait`; anything malformed is a 400. */
export function parseFeedQuery(params: URLSearchParams): FeedQuery {
  const int = (name: string, fallback: number, min: number, max: number) => {
    const raw = params.get(name)
    if (raw === null || raw === '') return fallback
    if (!/^\d{1,9}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      throw invalidRequest(`"${name}" must be a whole number from ${min} to ${max}.`, [
        { path: `query.${name}`, message: `expected an integer in [${min}, ${max}]` },
      ])
    }
    return Number(raw)
  }
  return {
    after: int('after', 0, 0, 999_999_999),
    limit: int('limit', DEFAULT_FEED_LIMIT, 1, MAX_FEED_LIMIT),
    waitSeconds: int('wait', 0, 0, MAX_WAIT_SECONDS),
  }
}

export type Feed = z.infer<typeof FeedSchema> & {
  /** Seconds a poller should wait before asking again (while not done). */
  retryAfter: number
}

/**
 * The job's events after a cursor. With `waitSeconds`, holds the request
 * until something arrives or time is up, checking at the pace of
 * `checkPacer` (one state read per check once the job is known).
 */
export async function readFeed(deps: Deps, viewer: Viewer, jobId: string, query: FeedQuery, signal?: AbortSignal, pace?: PaceSettings): Promise<Feed> {
  const deadline = deps.clock.now() + query.waitSeconds * 1000
  const pacer = checkPacer(pace, deps.clock.now())
  const load = ownedJobLoader(deps, viewer, jobId)
  for (;;) {
    const { lastEventAt, ...feed } = await readFeedOnce(deps, load, jobId, query)
    if (feed.events.length > 0 || feed.done || signal?.aborted) return feed
    const wait = pacer.next(deps.clock.now(), { found: false, lastEventAt })
    if (deps.clock.now() + wait > deadline) return feed
    await deps.clock.sleep(wait, signal)
  }
}

/**
 * Loads the caller's job for a watcher that checks it many times: the first
 * load proves ownership (up to three reads), later ones read only the state
 * (one read), also while the job is still queued.
 */
export function ownedJobLoader(deps: Pick<Deps, 'store'>, viewer: Viewer, jobId: string): () => Promise<OwnedJob> {
  // What the first load found: the job's spec (still queued) or its state.
  let known: { spec: JobSpec | null } | null = null
  return async () => {
    if (!known) {
      const job = await loadOwnedJob(deps, viewer, jobId)
      known = { spec: job.spec ?? null }
      return job
    }
    const stored = await readState(deps.store, jobId)
    if (stored) {
      if (!sees(viewer, stored.state)) throw notFound()
      return { stored }
    }
    // Not claimed yet; a state that was there and is gone went past retention.
    if (!known.spec) throw notFound()
    return { spec: known.spec }
  }
}

export interface FeedCheck extends Feed {
  /** `ts` of the job's newest event (null before the first): how active the job is. */
  lastEventAt: number | null
}

/** One check of the feed: the state, and the event blobs behind the tail if the cursor is behind it. */
export async function readFeedOnce(deps: Deps, load: () => Promise<OwnedJob>, jobId: string, query: Omit<FeedQuery, 'waitSeconds'> & { waitSeconds?: number }): Promise<FeedCheck> {
  const waiting = (query.waitSeconds ?? 0) > 0
  for (let round = 0; ; round++) {
    const job = await load()
    if (!job.stored) {
      if (query.after > 0) throw badCursor(query.after, 0)
      // A delayed job: nothing happens before its time, so come back then (a minute at most) and check slowly meanwhile.
      if (specStatus(job.spec) === 'scheduled') return { ...scheduledFeed(jobId, job.spec.runAt!, deps.clock.now()), lastEventAt: null }
      // A job just submitted is about to start: watch it at the active pace.
      return { jobId, status: 'queued', events: [], next: 0, done: false, firstSeq: 1, retryAfter: waiting ? 0 : 1, lastEventAt: job.spec.createdAt }
    }
    const { state } = job.stored
    if (query.after > state.log.lastSeq) throw badCursor(query.after, state.log.lastSeq)
    try {
      const slice = await readEvents(deps.store, jobLog(jobId), state.log, query.after, query.limit)
      const next = slice.events.at(-1)?.seq ?? query.after
      const done = isTerminal(state.status) && next >= state.log.lastSeq
      return {
        jobId,
        status: state.status,
        events: slice.events,
        next,
        done,
        firstSeq: state.log.firstSeq,
        ...(slice.truncatedBefore !== null ? { truncated: { droppedBefore: slice.truncatedBefore } } : {}),
        // Come straight back after events, or after a long-poll that already waited; a job
        // waiting for its next attempt has nothing to say before then (a minute at most).
        retryAfter: slice.events.length > 0 || waiting ? 0 : state.status === 'retrying' ? secondsUntil(state.nextAttemptAt ?? 0, deps.clock.now()) : 1,
        lastEventAt: state.log.tail.at(-1)?.ts ?? null,
      }
    } catch (error) {
      // The cap or retention removed a blob between our two reads: read again.
      if (error instanceof LogMovedError && round < 2) continue
      throw error
    }
  }
}

const secondsUntil = (at: number, now: number) => Math.min(60, Math.max(1, Math.ceil((at - now) / 1000)))

const scheduledFeed = (jobId: string, runAt: number, now: number): Feed => ({
  jobId, status: 'scheduled', events: [], next: 0, done: false, firstSeq: 1,
  retryAfter: secondsUntil(runAt, now),
})

const badCursor = (after: number, lastSeq: number) =>
  new ApiError(400, 'invalid_cursor', `"after" (${after}) is past the end of the log (last seq is ${lastSeq}).`, {
    extra: { issues: [{ path: 'query.after', message: `must be at most ${lastSeq}` }] },
  })

/**
 * Cancels a job: a queued one at once (its state is created as canceled, which
 * beats any worker's claim), a running one by asking its worker, which sees
 * it through the handler's AbortSignal. A running job whose worker is gone is
 * canceled directly.
 */
/** A cancel is over by then (a synchronous function stops at 60 s). */
const SETTLE_GUARD_MS = 60_000

export async function cancelJob(deps: Deps, viewer: Viewer, jobId: string) {
  let asked = false
  for (let round = 0; round < 5; round++) {
    const job = await loadOwnedJob(deps, viewer, jobId)
    const now = deps.clock.now()
    if (!job.stored) {
      // A job that never started waits outside the live index the reaper walks: should this
      // function die before the job is settled (refunded, its lock freed), this entry settles it.
      const guard = job.spec.dispatchedAt === undefined ? await addDue(deps.store, now + SETTLE_GUARD_MS, 'guard', jobId) : null
      const done = await commitState(deps, initialState(job.spec, now), null, (state) => ({
        state: { ...state, status: 'canceled', cancelRequested: true, finishedAt: now },
        events: [{ type: 'canceled', data: { reason: 'canceled before it started' } }],
      }))
      if (!done) continue // a worker claimed it meanwhile: cancel the running job instead
      await settleFinishedJob(deps, done)
      if (guard) await removeDue(deps.store, guard)
      return { status: 200 as const, job: publicJob({ state: done.state }) }
    }
    const { state, version } = job.stored
    // Our own request already took effect: the worker saw the marker and stopped. The job
    // was running when asked, so the answer is the same 202 as when our own write lands.
    if (asked && state.status === 'canceled') return { status: 202 as const, job: publicJob({ state }) }
    if (isTerminal(state.status)) {
      throw new ApiError(409, 'job_finished', `The job is already ${state.status}.`, { extra: { status: state.status } })
    }
    // A job waiting for its next attempt, or between two invocations, has no worker to ask: it is canceled directly.
    const waiting = state.status === 'retrying' || isHandedOver(state)
    if (state.cancelRequested && !waiting && !workerGone(deps, state.heartbeatAt, now)) {
      return { status: 202 as const, job: publicJob({ state }) }
    }
    const direct = state.status === 'queued' || waiting || workerGone(deps, state.heartbeatAt, now)
    // A busy worker rewrites the state many times a second and can win every
    // race against us; the marker reaches it regardless (it checks it on its
    // heartbeat tick and every few writes).
    if (!direct && !asked) {
      await deps.store.put(keys.cancelRequest(jobId), '')
      asked = true
    }
    const next = await commitState(deps, state, version, (base) =>
      direct
        ? {
            state: { ...base, status: 'canceled', cancelRequested: true, finishedAt: now, lease: null },
            events: [{ type: 'canceled', data: { reason: 'canceled by request' } }],
          }
        : { state: { ...base, cancelRequested: true }, events: [{ type: 'cancel_requested', data: null }] },
    )
    if (!next) {
      if (!direct && round >= 2) return { status: 202 as const, job: { ...publicJob({ state }), cancelRequested: true } }
      continue
    }
    if (direct) {
      await settleFinishedJob(deps, next)
      return { status: 200 as const, job: publicJob({ state: next.state }) }
    }
    return { status: 202 as const, job: publicJob({ state: next.state }) }
  }
  throw new ApiError(409, 'job_busy', 'The job changed while canceling it; try again.', { headers: { 'Retry-After': '1' } })
}

const workerGone = (deps: Deps, heartbeatAt: number | null, now: number) =>
  heartbeatAt !== null && heartbeatAt + deps.settings.heartbeatTimeoutMs < now
