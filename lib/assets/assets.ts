/**
 * Generated assets: files a job saves with `ctx.saveAsset`, kept in their own
 * Blobs store (`generated`), linked to their job and source task, and
 * downloadable by their account until their own retention ends (they outlive
 * the job's record).
 *
 * Saving writes, in an order where a crash between any two steps leaves
 * nothing that can never be deleted:
 * 1. two deletion markers in the job store's expiry buckets: retention, and
 *    an orphan check due once the job must have ended (its lock's lifetime);
 * 2. the bytes, with the asset record as metadata;
 * 3. the index blobs by job and by source task (see `assetKeys`);
 * 4. the job's own list of its files, with an `asset_created` event.
 * A job that fails or is canceled schedules its listed files for the
 * reaper's next run when it settles; the orphan check catches a file its job
 * never listed (a crash before step 4, or a worker fenced off meanwhile).
 */
import { createHash } from 'node:crypto'
import type { Deps } from '../core/deps.ts'
import { JobFailure, invalidRequest, notFound } from '../core/errors.ts'
import { ASSET_ID_PATTERN, JOB_ID_PATTERN } from '../core/ids.ts'
import { scheduleAssetCheck } from '../jobs/state.ts'
import { loadOwnedJob } from '../jobs/read.ts'
import { assetKeys, expiryBucket, keys, safePart } from '../storage/keys.ts'
import type { JobAsset } from '../core/types.ts'
import { assetUrl, publicAsset } from '../jobs/views.ts'
import { type Viewer, sees, viewerAccount } from '../tokens/viewer.ts'
import { type AssetFile, type AssetOwner, type AssetRecord, indexKeys, readAssetRecord, taskHash } from './record.ts'

const EMPTY = new Uint8Array(0)
// Filenames end up in a Content-Disposition header: no control characters, no path separators.
const FILENAME = /^[^\x00-\x1f\x7f/\\]{1,200}$/
const CONTENT_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i
/** Same rule as submit's `sourceTaskId`. */
const SOURCE_TASK_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/

/**
 * Stores one file for a running job. The size cap is checked before any
 * write, and a file over it fails the job with a public `asset_too_large`.
 * `record` adds the file to the job's state (the worker's fenced write).
 */
export async function saveJobAsset(
  deps: Pick<Deps, 'store' | 'assets' | 'clock' | 'ids' | 'settings'>,
  owner: AssetOwner,
  file: AssetFile,
  record: (asset: JobAsset) => Promise<void>,
): Promise<JobAsset> {
  if (!(file.data instanceof Uint8Array)) throw new TypeError('saveAsset needs `data` as a Uint8Array')
  if (!FILENAME.test(file.filename) || /^\.{1,2}$/.test(file.filename.trim())) {
    throw new TypeError('saveAsset: filename must be 1-200 characters without control characters or slashes')
  }
  if (!CONTENT_TYPE.test(file.contentType)) throw new TypeError(`saveAsset: "${file.contentType}" is not a media type`)
  const limit = deps.settings.maxAssetBytes
  if (file.data.byteLength > limit) {
    throw new JobFailure(
      'asset_too_large',
      `The generated file is ${formatBytes(file.data.byteLength)}, over the limit of ${formatBytes(limit)}${limit >= 1024 ? ` (${limit} bytes)` : ''} per generated file.`,
    )
  }

  const now = deps.clock.now()
  const asset: AssetRecord = {
    assetId: deps.ids('asset'),
    account: owner.account,
    jobId: owner.jobId,
    sourceTaskId: owner.sourceTaskId,
    filename: file.filename,
    contentType: file.contentType.toLowerCase(),
    bytes: file.data.byteLength,
    sha256: createHash('sha256').update(file.data).digest('hex'),
    createdAt: now,
    expiresAt: now + deps.settings.assetRetentionMs,
  }
  await Promise.all([
    deps.store.put(keys.expiry(expiryBucket(asset.expiresAt), 'asset', asset.assetId), ''),
    // A job cannot outlive its lock (the background cap is 15 minutes): judge the file after that.
    scheduleAssetCheck(deps.store, now + deps.settings.lockTtlMs, asset.assetId),
  ])
  await deps.assets.put(assetKeys.asset(asset.assetId), file.data, asset)
  await Promise.all(indexKeys(asset).map((key) => deps.assets.put(key, EMPTY, {})))
  const listed = jobAsset(asset)
  await record(listed)
  return listed
}

export const jobAsset = (asset: AssetRecord): JobAsset => ({
  assetId: asset.assetId,
  filename: asset.filename,
  contentType: asset.contentType,
  bytes: asset.bytes,
  sha256: asset.sha256,
  url: assetUrl(asset.assetId),
})

/** The viewer's asset, not yet expired; anything else answers 404 exactly like a missing one. */
export async function loadOwnedAsset(deps: Pick<Deps, 'assets' | 'clock'>, viewer: Viewer, assetId: string) {
  if (!ASSET_ID_PATTERN.test(assetId)) throw notFound('asset')
  const asset = await readAssetRecord(deps.assets, assetId)
  if (!asset || !sees(viewer, asset) || asset.expiresAt <= deps.clock.now()) throw notFound('asset')
  return asset
}

export interface Download {
  status: 200 | 304
  headers: Record<string, string>
  /** The Blobs response body itself: bytes pass through without being held in memory. */
  body: ReadableStream<Uint8Array> | null
}

/** A download of the caller's asset, or 304 when `If-None-Match` names its ETag (the sha256). */
export async function openDownload(
  deps: Pick<Deps, 'assets' | 'clock'>,
  viewer: Viewer,
  assetId: string,
  ifNoneMatch: string | null,
): Promise<Download> {
  const asset = await loadOwnedAsset(deps, viewer, assetId)
  const etag = `"${asset.sha256}"`
  const cache = { ETag: etag, 'Cache-Control': 'private, no-cache' }
  if (ifNoneMatch !== null && etagMatches(ifNoneMatch, etag)) return { status: 304, headers: cache, body: null }
  const opened = await deps.assets.stream(assetKeys.asset(asset.assetId))
  if (!opened) throw notFound('asset') // deleted between the two reads
  return {
    status: 200,
    headers: {
      ...cache,
      'Content-Type': asset.contentType,
      'Content-Length': String(asset.bytes),
      'Content-Disposition': attachment(asset.filename),
      'X-Content-Type-Options': 'nosniff',
    },
    body: opened.body,
  }
}

/** The assets of one of the caller's jobs; still listed after the job's own record has expired. */
export async function listJobAssets(deps: Pick<Deps, 'store' | 'assets' | 'clock'>, viewer: Viewer, jobId: string) {
  const account = viewerAccount(viewer)
  if (!JOB_ID_PATTERN.test(jobId)) throw notFound()
  const entries = await deps.assets.list(assetKeys.byJobPrefix(safePart(account), jobId))
  const found = await readListed(deps, viewer, entries, (asset) => asset.jobId === jobId)
  // Nothing indexed under the caller's account: 404 unless the job is the caller's own.
  if (found.length === 0) await loadOwnedJob(deps, viewer, jobId)
  return { jobId, assets: found.map(publicAsset) }
}

/** The caller's assets made for one source task (`sourceTaskId` given at submit). */
export async function listTaskAssets(deps: Pick<Deps, 'assets' | 'clock'>, viewer: Viewer, sourceTaskId: string | null) {
  const account = viewerAccount(viewer)
  if (sourceTaskId === null || !SOURCE_TASK_ID.test(sourceTaskId)) {
    throw invalidRequest('Pass "sourceTaskId": 1-128 characters of A-Z a-z 0-9 . _ : -', [
      { path: 'query.sourceTaskId', message: sourceTaskId === null ? 'required' : 'use 1-128 characters of A-Z a-z 0-9 . _ : -' },
    ])
  }
  const entries = await deps.assets.list(assetKeys.byTaskPrefix(safePart(account), taskHash(sourceTaskId)))
  const found = await readListed(deps, viewer, entries, (asset) => asset.sourceTaskId === sourceTaskId)
  return { sourceTaskId, assets: found.map(publicAsset) }
}
const READ_PARALLEL = 8

/** Records behind index entries: the caller's, unexpired, matching; oldest first. Stale entries are skipped. */
async function readListed(
  deps: Pick<Deps, 'assets' | 'clock'>,
  viewer: Viewer,
  entries: string[],
  matches: (asset: AssetRecord) => boolean,
): Promise<AssetRecord[]> {
  const ids = entries.map((key) => key.slice(key.lastIndexOf('/') + 1)).filter((id) => ASSET_ID_PATTERN.test(id))
  const found: AssetRecord[] = []
  const now = deps.clock.now()
  for (let i = 0; i < ids.length; i += READ_PARALLEL) {
    const records = await Promise.all(ids.slice(i, i + READ_PARALLEL).map((id) => readAssetRecord(deps.assets, id)))
    for (const asset of records) {
      if (asset && sees(viewer, asset) && asset.expiresAt > now && matches(asset)) found.push(asset)
    }
  }
  return found.sort((a, b) => a.createdAt - b.createdAt || a.assetId.localeCompare(b.assetId))
}

/** `If-None-Match` holds a list of ETags (weak or strong) or `*`. */
function etagMatches(header: string, etag: string): boolean {
  return header.split(',').some((part) => {
    const tag = part.trim().replace(/^W\//, '')
    return tag === '*' || tag === etag
  })
}

/**
 * `attachment` with the name twice: an ASCII-only quoted fallback (quotes,
 * backslashes and non-ASCII replaced) and the exact name in RFC 5987 form.
 */
export function attachment(filename: string): string {
  const fallback = filename.replace(/[^\x20-\x7e]|["\\%]/g, '_')
  const exact = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  return `attachment; filename="${fallback}"; filename*=UTF-8''${exact}`
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${Number((n / (1024 * 1024)).toFixed(1))} MB`
  if (n >= 1024) return `${Number((n / 1024).toFixed(1))} KB`
  return `${n} bytes`
}
