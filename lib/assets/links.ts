/**
 * Signed asset links: `/api/assets/<id>?exp=<unix seconds>&sig=<base64url>`,
 * a URL that downloads one file without any header, so `<img src>` and a
 * plain `<a href>` work. The signature is an HMAC over the asset id, its
 * account and the expiry, with a key derived for this purpose alone from the
 * deploy's signing secret (`purposeKey(secret, 'asset-link')`).
 *
 * Links are minted when a view is built (job status, asset listings), never
 * stored: a stored link would expire inside the record that holds it.
 * Checking one costs no storage read beyond the asset's record, which the
 * download reads anyway.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import { ApiError } from '../core/errors.ts'
import { assetUrl } from '../jobs/views.ts'

/** How long a minted link works: an hour (rounded up to the next {@link ASSET_LINK_STEP_MS}). */
export const ASSET_LINK_TTL_MS = 3600_000
/**
 * Expiries are rounded up to a 5-minute step, so every view built within one
 * step carries the same URL: the status ETag holds and browsers reuse the
 * cached image instead of downloading it again.
 */
export const ASSET_LINK_STEP_MS = 5 * 60_000

/** What a link carries besides the asset id in its path. */
export interface AssetLink {
  /** Expiry, unix seconds. */
  exp: number
  sig: string
}

/** Mints links for one account's assets; `link(assetId)` is the URL to hand out. */
export interface AssetLinks {
  link(assetId: string): string
}

const mac = (key: Buffer, assetId: string, account: string, exp: number) =>
  createHmac('sha256', key).update(`asset-link.v1\n${assetId}\n${account}\n${exp}`).digest('base64url')

/** The expiry of a link minted at `now`, in unix seconds. */
export function linkExpiry(now: number, ttlMs = ASSET_LINK_TTL_MS): number {
  return (Math.ceil((now + ttlMs) / ASSET_LINK_STEP_MS) * ASSET_LINK_STEP_MS) / 1000
}

export function assetLinks(key: Buffer, account: string, now: number, ttlMs = ASSET_LINK_TTL_MS): AssetLinks {
  const exp = linkExpiry(now, ttlMs)
  return { link: (assetId) => `${assetUrl(assetId)}?exp=${exp}&sig=${mac(key, assetId, account, exp)}` }
}

const EXP = /^\d{1,12}$/
/** An HMAC-SHA256 in base64url without padding. */
const SIG = /^[A-Za-z0-9_-]{43}$/

/** A link's query as the API document describes it; `readAssetLink` checks the same. */
export const AssetLinkQuerySchema = z.strictObject({
  exp: z.string().regex(EXP).optional().describe('A signed link’s expiry (Unix seconds). With `sig`, the link alone authorizes the download; no header needed.'),
  sig: z.string().regex(SIG).optional().describe('A signed link’s signature (base64url HMAC-SHA256).'),
})

export const linkRefused = (why: string) =>
  new ApiError(401, 'unauthorized', `${why} Get a fresh link from the job's status or its asset list, or send "Authorization: Bearer <key>".`, {
    headers: { 'WWW-Authenticate': 'Bearer' },
  })

/**
 * The link in a download's query: `null` when the request carries none (it
 * must then authenticate with a header). A malformed or expired link is a 401
 * before anything is read, as a malformed key is.
 */
export function readAssetLink(params: URLSearchParams, now: number): AssetLink | null {
  const exp = params.get('exp')
  const sig = params.get('sig')
  if (exp === null && sig === null) return null
  if (exp === null || sig === null || !EXP.test(exp) || !SIG.test(sig)) throw linkRefused('This asset link is malformed.')
  if (Number(exp) * 1000 <= now) throw linkRefused('This asset link has expired.')
  return { exp: Number(exp), sig }
}

/** Whether `link` was minted for this asset of this account (constant time). */
export function linkMatches(key: Buffer, assetId: string, account: string, link: AssetLink): boolean {
  const expected = Buffer.from(mac(key, assetId, account, link.exp))
  const given = Buffer.from(link.sig)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** A view's assets with signed links in place of their plain paths. */
export function withAssetLinks<T extends { assets: { assetId: string; url: string }[] }>(view: T, links: AssetLinks): T {
  return { ...view, assets: view.assets.map((asset) => ({ ...asset, url: links.link(asset.assetId) })) }
}

type Listed = { assetId: string; url: string }
const isListed = (value: unknown): value is Listed =>
  typeof value === 'object' && value !== null && typeof (value as Listed).assetId === 'string' && (value as Listed).url === assetUrl((value as Listed).assetId)

/**
 * Events as a client receives them: the files named by `asset_created`
 * (`data.asset`) and `done` (`data.assets`) carry signed links in place of
 * the plain paths stored in the log. A handler's own result is left as it is.
 */
export function withEventAssetLinks<E extends { type: string; data: unknown }>(events: E[], links: AssetLinks): E[] {
  const sign = (asset: unknown) => (isListed(asset) ? { ...asset, url: links.link(asset.assetId) } : asset)
  return events.map((event) => {
    const data = event.data as { asset?: unknown; assets?: unknown } | null
    if (event.type === 'asset_created' && data && isListed(data.asset)) return { ...event, data: { ...data, asset: sign(data.asset) } }
    if (event.type === 'done' && data && Array.isArray(data.assets)) return { ...event, data: { ...data, assets: data.assets.map(sign) } }
    return event
  })
}
