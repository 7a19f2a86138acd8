/**
 * Serving a generated file: by the caller's account (an API key) or by a
 * signed link, whole or as one byte range, with ETag (the sha256) and the
 * conditions that go with it. Bytes stream from storage part by part, and a
 * range opens only the parts it overlaps (see parts.ts).
 */
import type { Deps } from '../core/deps.ts'
import { ApiError, notFound } from '../core/errors.ts'
import { ASSET_ID_PATTERN } from '../core/ids.ts'
import { contentRange, decideRange, ifRangeHolds } from '../http/range.ts'
import { loadOwnedAsset } from './assets.ts'
import { type AssetLink, linkMatches } from './links.ts'
import { readRange } from './parts.ts'
import type { Viewer } from '../tokens/viewer.ts'
import { type AssetRecord, readAssetRecord } from './record.ts'

/**
 * The most one answer carries: a range asking for more gets its first 16 MiB
 * (Netlify caps a streamed function response at 20 MB).
 */
export const MAX_RANGE_BYTES = 16 * 1024 * 1024

/** Who may download: a viewer (an API key or a token, authenticated by the caller), or a signed link checked here. */
export type AssetAccess = { viewer: Viewer } | { link: AssetLink; key: Buffer }

/** The request headers a download looks at. */
export interface DownloadConditions {
  ifNoneMatch: string | null
  range: string | null
  ifRange: string | null
}

export const downloadConditions = (headers: Headers): DownloadConditions => ({
  ifNoneMatch: headers.get('if-none-match'),
  range: headers.get('range'),
  ifRange: headers.get('if-range'),
})

export interface Download {
  status: 200 | 206 | 304
  headers: Record<string, string>
  /** Streamed from storage: bytes pass through without being held in memory. */
  body: ReadableStream<Uint8Array> | null
}

export async function openDownload(
  deps: Pick<Deps, 'assets' | 'clock'>,
  access: AssetAccess,
  assetId: string,
  conditions: DownloadConditions,
): Promise<Download> {
  const now = deps.clock.now()
  const asset = 'viewer' in access ? await loadOwnedAsset(deps, access.viewer, assetId) : await loadLinkedAsset(deps, access, assetId)
  const etag = `"${asset.sha256}"`
  const cache = {
    ETag: etag,
    // A link's URL names its expiry, so caching it until then is safe; a header-authenticated answer is revalidated.
    'Cache-Control': 'link' in access ? `private, max-age=${Math.max(0, Math.floor(access.link.exp - now / 1000))}` : 'private, no-cache',
    'Accept-Ranges': 'bytes',
  }
  if (conditions.ifNoneMatch !== null && etagMatches(conditions.ifNoneMatch, etag)) return { status: 304, headers: cache, body: null }
  const decision = ifRangeHolds(conditions.ifRange, etag) ? decideRange(conditions.range, asset.bytes, MAX_RANGE_BYTES) : { kind: 'full' as const }
  if (decision.kind === 'unsatisfiable') {
    throw new ApiError(416, 'range_not_satisfiable', `The file has ${asset.bytes} bytes; ask for a range that starts inside it.`, {
      headers: { 'Accept-Ranges': 'bytes', 'Content-Range': `bytes */${asset.bytes}` },
      extra: { bytes: asset.bytes },
    })
  }
  const headers = {
    ...cache,
    'Content-Type': asset.contentType,
    'Content-Disposition': attachment(asset.filename),
    'X-Content-Type-Options': 'nosniff',
  }
  if (decision.kind === 'partial') {
    const { range } = decision
    return {
      status: 206,
      headers: { ...headers, 'Content-Range': contentRange(range, asset.bytes), 'Content-Length': String(range.end - range.start + 1) },
      body: readRange(deps.assets, asset, range),
    }
  }
  return {
    status: 200,
    headers: { ...headers, 'Content-Length': String(asset.bytes) },
    body: asset.bytes === 0 ? null : readRange(deps.assets, asset, { start: 0, end: asset.bytes - 1 }),
  }
}

/**
 * The asset a link names, if the link was minted for it and its account.
 * A link for another asset, a missing or an expired file all answer 404 the
 * same way, as another account's id does for a key.
 */
async function loadLinkedAsset(deps: Pick<Deps, 'assets' | 'clock'>, access: { link: AssetLink; key: Buffer }, assetId: string): Promise<AssetRecord> {
  if (!ASSET_ID_PATTERN.test(assetId)) throw notFound('asset')
  const asset = await readAssetRecord(deps.assets, assetId)
  if (!asset || !linkMatches(access.key, assetId, asset.account, access.link) || asset.expiresAt <= deps.clock.now()) throw notFound('asset')
  return asset
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
 * (An `<img>` shows the file whatever the disposition.)
 */
export function attachment(filename: string): string {
  const fallback = filename.replace(/[^\x20-\x7e]|["\\%]/g, '_')
  const exact = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  return `attachment; filename="${fallback}"; filename*=UTF-8''${exact}`
}
