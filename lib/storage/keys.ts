/**
 * Every storage key the product writes, built in one place. No key is ever
 * both a blob and the folder of another blob (the local sandbox stores keys
 * as files and folders).
 */

const SAFE_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

export class UnsafeKeyError extends Error {
  override name = 'UnsafeKeyError'
}

/** Checks one caller-influenced part of a key: non-empty, short, no separators. */
export function safePart(part: string, what = 'key part'): string {
  if (typeof part !== 'string' || !SAFE_PART.test(part) || part.includes('..')) {
    throw new UnsafeKeyError(`${what} must be 1-128 characters of A-Z a-z 0-9 . _ - and not start with a symbol`)
  }
  return part
}

/** The canonical resource key of a lock: its parts, checked, joined with ':'. */
export function resourceKey(parts: readonly string[]): string {
  if (parts.length === 0) throw new UnsafeKeyError('a resource key needs at least one part')
  return parts.map((part) => safePart(part, 'resource key part')).join(':')
}

const pad = (n: number, width = 10) => String(n).padStart(width, '0')

export const keys = {
  apiKey: (hash: string) => `apikey/${hash}`,
  account: (account: string) => `account/${account}`,
  accountPrefix: 'account/',
  ledgerChunk: (account: string, index: number) => `ledger/${account}/c/${pad(index)}`,
  ledgerPage: (account: string, index: number) => `ledger/${account}/p/${pad(index)}`,
  /** Jobs sharing a client job id (see credits/reservations.ts); the id is hashed. */
  reservation: (account: string, clientJobIdHash: string) => `reservation/${account}/${clientJobIdHash}`,
  spec: (jobId: string) => `queue/${jobId}`,
  specPrefix: 'queue/',
  /** A failed job's spec, kept until its retention so an operator can run it again. */
  failedSpec: (jobId: string) => `failed/${jobId}`,
  /**
   * The spec of a job that waits (for its start time, or its turn in a
   * resource's line): kept out of `queue/`, which the reaper walks every run.
   * Starting the job creates `queue/<job>` and then deletes this one.
   */
  waitingSpec: (jobId: string) => `waiting/${jobId}`,
  waitingPrefix: 'waiting/',
  /** An entry of a resource's line (see locks/line.ts): `{ jobId, at }`, or a tombstone. */
  lineEntry: (resource: string, seq: number) => `line/${resource}/${pad(seq, 16)}`,
  /** An account's running jobs, under its limit, and its line (see locks/slots.ts). */
  accountSlots: (account: string) => `slots/${account}`,
  /** An entry of an account's line: a job waiting for one of its running jobs to end. */
  accountLineEntry: (account: string, seq: number) => `slotline/${account}/${pad(seq, 16)}`,
  state: (jobId: string) => `job/${jobId}`,
  /** Written by cancel for a running job; read by its worker. */
  cancelRequest: (jobId: string) => `cancel/${jobId}`,
  statePrefix: 'job/',
  chunk: (jobId: string, index: number) => `events/${jobId}/c/${pad(index)}`,
  page: (jobId: string, index: number) => `events/${jobId}/p/${pad(index)}`,
  eventsPrefix: (jobId: string) => `events/${jobId}/`,
  /** A step's stored result (see jobs/steps.ts); the step name is hashed. */
  step: (jobId: string, nameHash: string) => `steps/${jobId}/${nameHash}`,
  stepsPrefix: (jobId: string) => `steps/${jobId}/`,
  lock: (resource: string) => `lock/${resource}`,
  lockPrefix: 'lock/',
  idempotency: (account: string, keyHash: string) => `idem/${account}/${keyHash}`,
  /** Retention is found through time buckets, so the reaper lists only what is due. */
  expiryFolder: (bucket: number) => `expiry/${pad(bucket, 12)}`,
  expiry: (bucket: number, kind: 'job' | 'asset' | 'idem' | 'reservation', id: string) => `expiry/${pad(bucket, 12)}/${kind}~${id}`,
  expiryPrefix: 'expiry/',
  /** Where the reaper's last run stopped, so the next one goes on from there. */
  reaperCursor: 'reaper/cursor',
  /** Work due at a time (see schedule/due-index.ts), bucketed by minute. */
  dueFolder: (minute: number) => `due/${pad(minute, 10)}`,
  duePrefix: 'due/',
  /** A job's webhook deliveries: attempts and outcome (see webhooks/delivery.ts). */
  webhookDelivery: (jobId: string) => `webhook/${jobId}`,
  /** The minute before which the dispatcher found every bucket empty. */
  dispatcherCursor: 'dispatcher/cursor',
}

/**
 * Keys of the `generated` store (assets). Listing by job or by source task
 * goes through empty index blobs, one per asset and listing, written once
 * and never rewritten: unlike a per-job or per-task manifest there is no
 * read-modify-write to race on (two jobs of one task save files at once),
 * and a listing is one `list` of a narrow prefix, never a scan of all assets.
 * The source task id is hashed: it may hold ':' and be up to 128 characters.
 */
export const assetKeys = {
  asset: (assetId: string) => `asset/${assetId}`,
  /** Part `n` ≥ 1 of a file stored in parts (part 0 is `asset/<id>` itself). */
  part: (assetId: string, n: number) => `part/${assetId}/${n}`,
  partPrefix: (assetId: string) => `part/${assetId}/`,
  byJob: (account: string, jobId: string, assetId: string) => `byjob/${account}/${jobId}/${assetId}`,
  byJobPrefix: (account: string, jobId: string) => `byjob/${account}/${jobId}/`,
  byTask: (account: string, taskHash: string, assetId: string) => `bytask/${account}/${taskHash}/${assetId}`,
  byTaskPrefix: (account: string, taskHash: string) => `bytask/${account}/${taskHash}/`,
}

/** Retention is bucketed by time so the reaper lists only what is due. */
export const EXPIRY_BUCKET_MS = 5 * 60_000
export const expiryBucket = (at: number) => Math.floor(at / EXPIRY_BUCKET_MS)

export const bucketOf = (key: string) => Number(key.slice('expiry/'.length, 'expiry/'.length + 12))
