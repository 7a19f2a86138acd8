/**
 * Idempotency-Key: per account, one key makes at most one job, whatever the
 * timings. Its record at `idem/<account>/<sha256(key)>` changes only through
 * conditional writes:
 *
 *   absent ──create──▶ pending ──bind──▶ bound ── its job exists: replayed for 24 h
 *                         │                │
 *                         └────────────────┴── no job made, or it never reached a worker,
 *                                              or 24 h passed ──▶ reaping ──delete──▶ absent
 *   expired, or abandoned (pending: 30 s; bound without a job: 5 min) ──replace──▶ pending (a new request)
 *
 * A submit writes its job only after binding, and the bind is conditional on
 * the version its own claim wrote. A request that took the key over meanwhile
 * changed that version, so the slower request's bind fails and it writes no
 * job: a pending key can be taken over early, whatever the timings. A bound
 * record without a job is taken over only after BOUND_ABANDONED_MS, longer
 * than any submit can live, so its submit can no longer write the job.
 * Blobs cannot delete conditionally, so a record is first replaced (if
 * unchanged) with `reaping`, then deleted; claims wait out a young `reaping`
 * record, so the delete can only hit that marker.
 */
import { createHash } from 'node:crypto'
import type { Clock } from '../core/clock.ts'
import type { Deps } from '../core/deps.ts'
import { ApiError, invalidRequest } from '../core/errors.ts'
import { readSpec, readState } from './state.ts'
import { expiryBucket, keys, safePart } from '../storage/keys.ts'
import type { BlobPort } from '../storage/port.ts'
import { type IdempotencyRecord, IdempotencyRecordSchema, type JobState } from '../core/types.ts'
import { type PublicJob, publicJob } from './views.ts'
import { parseRecord } from '../core/records.ts'
import { SUBMIT_WRITES_LAND_MS } from '../core/limits.ts'

/** An Idempotency-Key stays bound to its job for 24 h. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000
/**
 * A pending key is free after this (its submit is slow or dead; if alive,
 * its bind fails), so a client retrying after a timeout goes ahead.
 */
export const PENDING_ABANDONED_MS = 30_000
/**
 * A bound key whose job was never written is free after this: a synchronous
 * function runs at most 60 s, plus time for a write it sent just before it
 * was stopped to land (see core/limits.ts).
 */
export const BOUND_ABANDONED_MS = SUBMIT_WRITES_LAND_MS
/** Whoever marks a record `reaping` deletes it next, within its own (≤ 60 s) life. */
const REAPING_GRACE_MS = BOUND_ABANDONED_MS
const MAX_ROUNDS = 6

/** A key this submit holds: the version it last wrote decides every later write. */
export interface KeyClaim {
  key: string
  jobId: string
  requestHash: string
  createdAt: number
  expiresAt: number
  version: string
}

export type ClaimOutcome = { claim: KeyClaim } | { replay: PublicJob }

const inProgress = (message = 'A request with this Idempotency-Key is still being processed.') =>
  new ApiError(409, 'idempotency_in_progress', message, { headers: { 'Retry-After': '1' } })

/** The storage key of an Idempotency-Key (per account), or a 400 for a malformed one. */
export function idempotencyRecordKey(account: string, idempotencyKey: string, namespace: string | null = null) {
  if (!/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
    throw invalidRequest('Idempotency-Key must be 1-255 visible ASCII characters.', [
      { path: 'headers.idempotency-key', message: 'invalid' },
    ])
  }
  // A namespace (a token's own) keeps its keys apart from the account's and other tokens'.
  return keys.idempotency(safePart(account), sha256(namespace === null ? idempotencyKey : `${namespace}\n${idempotencyKey}`))
}

const requestHashOf = (request: unknown) => sha256(JSON.stringify(request))

/**
 * Claims the key for a new job `jobId` (pending), or answers with the job an
 * earlier request with the same body made. 422 for a different body, 409
 * while the first request is still working.
 */
export async function claimIdempotencyKey(
  deps: Pick<Deps, 'store' | 'clock'>,
  key: string,
  jobId: string,
  request: unknown,
): Promise<ClaimOutcome> {
  const { store, clock } = deps
  const requestHash = requestHashOf(request)
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const now = clock.now()
    const mine = { state: 'pending', jobId, requestHash, createdAt: now, expiresAt: now + IDEMPOTENCY_TTL_MS } as const
    const created = await store.create(key, JSON.stringify(mine))
    if (created.ok) return { claim: await scheduled(store, { key, ...mine, version: created.version }) }

    const current = await readRecord(store, key)
    if (!current) continue
    const { record, version } = current
    // Our own create landed though its answer said otherwise.
    if (record.state === 'pending' && record.jobId === jobId) return { claim: await scheduled(store, { key, ...record, version }) }
    if (record.state === 'reaping' && record.since + REAPING_GRACE_MS > now) {
      await clock.sleep(25 * (round + 1)) // whoever marked it deletes it in a moment
      continue
    }
    const verdict = await judge(deps, record, now, requestHash)
    if (verdict.replay) return { replay: verdict.replay }
    if (!verdict.free) throw verdict.error
    const taken = await store.replace(key, JSON.stringify(mine), version)
    if (taken.ok) return { claim: await scheduled(store, { key, ...mine, version: taken.version }) }
  }
  throw inProgress()
}

/**
 * The job an earlier request with this same body made under this key, if
 * it is still the key's answer (used when this request cannot run anew).
 */
export async function findReplay(deps: Pick<Deps, 'store' | 'clock'>, key: string, request: unknown): Promise<PublicJob | null> {
  const current = await readRecord(deps.store, key)
  if (!current || current.record.state !== 'bound') return null
  const verdict = await judge(deps, current.record, deps.clock.now(), requestHashOf(request))
  return verdict.replay ?? null
}

/**
 * Binds the claimed key to its job, just before the job is written. Fails
 * with 409 if another request took the key over: this one was too slow and
 * must write nothing (the other request's job is the key's answer).
 */
export async function bindIdempotencyKey(store: BlobPort, claim: KeyClaim): Promise<void> {
  const { key, jobId, requestHash, createdAt, expiresAt } = claim
  const bound = await store.replace(key, JSON.stringify({ state: 'bound', jobId, requestHash, createdAt, expiresAt }), claim.version)
  if (bound.ok) {
    claim.version = bound.version
    return
  }
  // Decided by content: the bind may have landed with its answer lost.
  const current = await readRecord(store, key)
  if (current?.record.state === 'bound' && current.record.jobId === jobId) {
    claim.version = current.version
    return
  }
  throw inProgress('Another request with this Idempotency-Key took it over; ask again for its job.')
}

/**
 * Frees the key when this submit made no job, or its job never reached a
 * worker, so a retry gets a new attempt. Only if the key is still this
 * submit's: a request that took it over keeps it.
 */
export async function releaseIdempotencyKey(store: BlobPort, clock: Clock, claim: KeyClaim): Promise<boolean> {
  // The expiry marker goes while `reaping` holds off new claims, so it can never be the next claim's marker.
  return removeRecord(store, clock, claim.key, claim.version, expiryMarker(claim.key, claim.expiresAt))
}

/**
 * The reaper's clean-up when job `jobId` is deleted: removes the key's
 * record only if it still belongs to that job.
 */
export async function forgetIdempotencyRecord(store: BlobPort, clock: Clock, key: string, jobId: string) {
  const current = await readRecord(store, key)
  if (!current || current.record.state === 'reaping' || current.record.jobId !== jobId) return false
  return removeRecord(store, clock, key, current.version)
}

/**
 * The reaper's clean-up from an expiry marker (`<account>.<hash>`): removes
 * the record once past its 24 h, which also catches submits that died.
 */
export async function expireIdempotencyRecord(store: BlobPort, clock: Clock, markerId: string) {
  const dot = markerId.lastIndexOf('.') // account names may hold dots; the hash holds none
  const key = keys.idempotency(markerId.slice(0, dot), markerId.slice(dot + 1))
  const current = await readRecord(store, key)
  if (!current) return false
  const { record } = current
  const now = clock.now()
  const due = record.state === 'reaping' ? record.since + REAPING_GRACE_MS <= now : record.expiresAt <= now
  return due ? removeRecord(store, clock, key, current.version) : false
}

async function removeRecord(store: BlobPort, clock: Clock, key: string, version: string, marker?: string) {
  const marked = await store.replace(key, JSON.stringify({ state: 'reaping', since: clock.now() }), version)
  if (!marked.ok) return false
  if (marker) await store.delete(marker)
  await store.delete(key)
  return true
}

type Verdict = { free: true; replay?: never } | { free: false; replay: PublicJob; error?: never } | { free: false; replay?: never; error: ApiError }

/** What a request with `requestHash` may do with a record someone else wrote. */
async function judge(deps: Pick<Deps, 'store'>, record: IdempotencyRecord, now: number, requestHash: string): Promise<Verdict> {
  if (record.state === 'reaping' || record.expiresAt <= now) return { free: true }
  if (record.state === 'pending') {
    // A pending record never has a job: its submit must bind first, which a takeover makes fail.
    if (record.createdAt + PENDING_ABANDONED_MS <= now) return { free: true }
  } else {
    const job = await findJob(deps.store, record.jobId)
    if (job?.neverDispatched) return { free: true }
    if (job && record.requestHash === requestHash) return { free: false, replay: job.view }
    if (!job && record.createdAt + BOUND_ABANDONED_MS <= now) return { free: true }
  }
  if (record.requestHash !== requestHash) {
    return { free: false, error: new ApiError(422, 'idempotency_key_reused', 'This Idempotency-Key was used for a different request.') }
  }
  return { free: false, error: inProgress() }
}

async function findJob(store: BlobPort, jobId: string) {
  const stored = await readState(store, jobId)
  if (stored) return stateView(stored.state)
  const spec = await readSpec(store, jobId)
  if (spec) return { view: publicJob({ spec }), neverDispatched: false }
  // Claimed or failed (its spec then removed) between the two reads: its state exists now.
  const claimed = await readState(store, jobId)
  return claimed ? stateView(claimed.state) : null
}

function stateView(state: JobState) {
  // Failed before it ever ran because no worker could be reached (by its submit, which told the
  // client to try again, or by the reaper): a retry with the key is a new attempt.
  const neverDispatched =
    state.status === 'failed' && state.startedAt === null && (state.error?.code === 'worker_unavailable' || state.error?.code === 'worker_never_started')
  return { view: publicJob({ state }), neverDispatched }
}

async function readRecord(store: BlobPort, key: string) {
  const blob = await store.read(key)
  return blob ? { record: parseRecord(key, blob.data, IdempotencyRecordSchema), version: blob.version } : null
}

/** Found by the reaper even if the submit dies before its job exists. */
async function scheduled(store: BlobPort, claim: KeyClaim & { state?: string }): Promise<KeyClaim> {
  const { key, jobId, requestHash, createdAt, expiresAt, version } = claim
  await store.put(expiryMarker(key, expiresAt), '')
  return { key, jobId, requestHash, createdAt, expiresAt, version }
}

const expiryMarker = (key: string, expiresAt: number) =>
  keys.expiry(expiryBucket(expiresAt), 'idem', key.slice('idem/'.length).replace('/', '.'))

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex')
