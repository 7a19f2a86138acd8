/**
 * Asset downloads for browsers, through the real function modules over HTTP
 * and the real local Blobs server: signed links that need no header (and
 * every way one is refused), and byte ranges served from the parts a file is
 * stored in, reading only the parts a range overlaps.
 */
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AssetLink, assetLinks, linkExpiry } from '../lib/assets/links.ts'
import { writeParts } from '../lib/assets/parts.ts'
import type { AssetRecord } from '../lib/assets/record.ts'
import { randomIds } from '../lib/core/ids.ts'
import { purposeKey } from '../lib/core/signing.ts'
import { testApi } from './support/api.ts'

const api = testApi({ accounts: { 'acct-a': 10, 'acct-b': 10 } })
const { call } = api
let linkKey: Buffer

beforeAll(async () => {
  await api.start()
  linkKey = purposeKey(api.signingSecret, 'asset-link')
})
afterAll(() => api.stop())

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')

/** Stores a file for `account` in parts of `partBytes` (absent: one blob, as files were stored before parts). */
async function storeFile(data: Uint8Array, options: { account?: string; partBytes?: number; expiresAt?: number } = {}) {
  const now = Date.now()
  const record: AssetRecord = {
    assetId: randomIds('asset'),
    account: options.account ?? 'acct-a',
    jobId: randomIds('job'),
    sourceTaskId: null,
    filename: 'file.bin',
    contentType: 'application/octet-stream',
    bytes: data.byteLength,
    sha256: sha256(data),
    createdAt: now,
    expiresAt: options.expiresAt ?? now + 3600_000,
    ...(options.partBytes === undefined ? {} : { partBytes: options.partBytes }),
  }
  await writeParts(api.generated, record, data, record)
  return record
}

const linkFor = (assetId: string, account = 'acct-a', key = linkKey, now = Date.now()) => assetLinks(key, account, now).link(assetId)
const withSig = (url: string, change: (link: AssetLink) => AssetLink) => {
  const parsed = new URL(url, 'http://x')
  const next = change({ exp: Number(parsed.searchParams.get('exp')), sig: parsed.searchParams.get('sig')! })
  return `${parsed.pathname}?exp=${next.exp}&sig=${next.sig}`
}
const everything = async () => ({ jobs: await api.contents(), files: await api.files() })

describe('signed asset links', () => {
  let data: Uint8Array
  let asset: AssetRecord

  beforeAll(async () => {
    data = randomBytes(5000)
    asset = await storeFile(data, { partBytes: 2048 })
  })

  it('download with no header, cacheable privately until the link expires', async () => {
    const url = linkFor(asset.assetId)
    expect(url).toMatch(new RegExp(`^/api/assets/${asset.assetId}\\?exp=\\d+&sig=[A-Za-z0-9_-]{43}$`))
    const res = await call(url, { key: null })
    expect(res.status).toBe(200)
    expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(asset.sha256)
    expect(res.headers.get('etag')).toBe(`"${asset.sha256}"`)
    const maxAge = Number(/^private, max-age=(\d+)$/.exec(res.headers.get('cache-control') ?? '')?.[1])
    expect(maxAge).toBeGreaterThan(3600 - 60)
    expect(maxAge).toBeLessThanOrEqual(3600 + 300)
    // A header-authenticated answer is revalidated instead.
    expect((await call(`/api/assets/${asset.assetId}`)).headers.get('cache-control')).toBe('private, no-cache')
  })

  it('are judged alone: a wrong Authorization beside a good link does not matter', async () => {
    const res = await call(linkFor(asset.assetId), { key: 'djk_nobody.bad' })
    expect(res.status).toBe(200)
    await res.arrayBuffer()
  })

  it('expire after about an hour, on a 5-minute step so views built close together carry one URL', () => {
    const now = Date.UTC(2026, 11, 1, 10, 2, 30)
    expect(linkExpiry(now) * 1000).toBe(Date.UTC(2026, 11, 1, 11, 5, 0))
    expect(linkFor(asset.assetId, 'acct-a', linkKey, now)).toBe(linkFor(asset.assetId, 'acct-a', linkKey, now + 60_000))
  })

  it('refuse a malformed or expired link with 401 before reading anything, like a bad key', async () => {
    const before = await everything()
    api.blobs.resetOps()
    const expired = assetLinks(linkKey, 'acct-a', Date.now() - 3 * 3600_000).link(asset.assetId) // a true signature, past its time
    for (const url of [
      expired,
      `/api/assets/${asset.assetId}?exp=99999999999`,
      `/api/assets/${asset.assetId}?sig=${'a'.repeat(43)}`,
      withSig(linkFor(asset.assetId), (link) => ({ ...link, sig: link.sig.slice(1) })),
      withSig(linkFor(asset.assetId), (link) => ({ ...link, sig: `${link.sig}=` })),
      `/api/assets/${asset.assetId}?exp=-1&sig=${'a'.repeat(43)}`,
      `/api/assets/${asset.assetId}?exp=1e12&sig=${'a'.repeat(43)}`,
    ]) {
      const res = await call(url, { key: null })
      expect(res.status, url).toBe(401)
      expect(res.headers.get('www-authenticate')).toBe('Bearer')
      expect((await res.json()).error.code).toBe('unauthorized')
    }
    expect(api.blobs.ops).toEqual({})
    expect(await everything()).toEqual(before)
  })

  it('answer a link for another asset, another account, another secret or a changed expiry with 404, exactly like a missing file', async () => {
    const other = await storeFile(randomBytes(10), { account: 'acct-b' })
    const missing = `asset_${'0'.repeat(8)}${'a'.repeat(32)}`
    const before = await everything()
    const notFound = await (await call(`/api/assets/${missing}`)).json() // with a key: the API's 404 for a missing file
    const refused = [
      linkFor(missing), // a true link to nothing
      `/api/assets/${other.assetId}?${linkFor(asset.assetId).split('?')[1]}`, // another asset's signature
      linkFor(asset.assetId, 'acct-b'), // signed for another account
      linkFor(other.assetId, 'acct-a'),
      linkFor(asset.assetId, 'acct-a', purposeKey(`x${api.signingSecret}`, 'asset-link')), // another deploy's secret
      linkFor(asset.assetId, 'acct-a', purposeKey(api.signingSecret, 'browser-token')), // a key for another purpose
      withSig(linkFor(asset.assetId), (link) => ({ ...link, exp: link.exp + 300 })), // a later expiry
      withSig(linkFor(asset.assetId), (link) => ({ ...link, sig: `${link.sig[0] === 'A' ? 'B' : 'A'}${link.sig.slice(1)}` })),
      `/api/assets/not-an-id?${linkFor(asset.assetId).split('?')[1]}`,
    ]
    for (const url of refused) {
      const res = await call(url, { key: null })
      expect(res.status, url).toBe(404)
      expect(await res.json()).toEqual(notFound)
    }
    expect(await everything()).toEqual(before)
  })

  it('stop working once the file itself has expired', async () => {
    const gone = await storeFile(randomBytes(10), { expiresAt: Date.now() - 1 })
    expect((await call(linkFor(gone.assetId), { key: null })).status).toBe(404)
  })
})

describe('byte ranges', () => {
  const SIZE = 10_000
  const PART = 1024
  let data: Uint8Array
  let asset: AssetRecord
  let url: string

  beforeAll(async () => {
    data = randomBytes(SIZE)
    asset = await storeFile(data, { partBytes: PART })
    url = linkFor(asset.assetId)
  })

  const ranged = (range: string, headers: Record<string, string> = {}) => call(url, { key: null, headers: { range, ...headers } })

  it.each([
    ['bytes=0-99', 0, 99],
    ['bytes=1000-3000', 1000, 3000], // across three parts
    ['bytes=1024-2047', 1024, 2047], // exactly one part
    ['bytes=9990-', 9990, SIZE - 1],
    ['bytes=-5', SIZE - 5, SIZE - 1],
    ['bytes=-20000', 0, SIZE - 1],
    ['bytes=5000-999999', 5000, SIZE - 1],
    ['bytes=9999-9999', 9999, 9999],
    ['BYTES = 7-7', 7, 7],
  ])('%s: 206 with Content-Range and exactly those bytes', async (range, start, end) => {
    const res = await ranged(range)
    expect(res.status).toBe(206)
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/${SIZE}`)
    expect(res.headers.get('content-length')).toBe(String(end - start + 1))
    expect(res.headers.get('accept-ranges')).toBe('bytes')
    expect(res.headers.get('etag')).toBe(`"${asset.sha256}"`)
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(data.subarray(start, end + 1)))).toBe(true)
  })

  it.each(['bytes=10000-', 'bytes=10000-10005', 'bytes=-0'])('%s: 416 with Content-Range: bytes */size, the error envelope and no write', async (range) => {
    const before = await everything()
    const res = await ranged(range)
    expect(res.status).toBe(416)
    expect(res.headers.get('content-range')).toBe(`bytes */${SIZE}`)
    expect((await res.json()).error.code).toBe('range_not_satisfiable')
    expect(await everything()).toEqual(before)
  })

  it.each(['bytes=0-1,5-6', 'bytes=abc', 'items=0-1', 'bytes=5-2', 'bytes=-', 'bytes=0-1x', 'bytes='])(
    '%s (several ranges, or not a range): ignored, the whole file with 200',
    async (range) => {
      const res = await ranged(range)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-length')).toBe(String(SIZE))
      expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(asset.sha256)
    },
  )

  it('honours If-Range only for the strong ETag; If-None-Match still answers 304', async () => {
    const same = await ranged('bytes=0-9', { 'if-range': `"${asset.sha256}"` })
    expect(same.status).toBe(206)
    await same.arrayBuffer()
    for (const ifRange of ['"0000"', `W/"${asset.sha256}"`, 'Tue, 01 Dec 2026 00:00:00 GMT']) {
      const changed = await ranged('bytes=0-9', { 'if-range': ifRange })
      expect(changed.status, ifRange).toBe(200)
      expect(sha256(new Uint8Array(await changed.arrayBuffer()))).toBe(asset.sha256)
    }
    expect((await ranged('bytes=0-9', { 'if-none-match': `"${asset.sha256}"` })).status).toBe(304)
  })

  it('reads only the parts a range overlaps', async () => {
    api.blobs.resetOps()
    const res = await ranged('bytes=3000-4100') // parts 2, 3 and 4 of 0-9
    await res.arrayBuffer()
    expect(api.blobs.ops).toEqual({ getMetadata: 1, get: 3 })
    api.blobs.resetOps()
    await (await ranged('bytes=-10')).arrayBuffer() // the last part alone
    expect(api.blobs.ops).toEqual({ getMetadata: 1, get: 1 })
  })

  it('serves the whole file from its parts, and ranges of a file stored in one blob', async () => {
    const whole = await call(url, { key: null })
    expect(sha256(new Uint8Array(await whole.arrayBuffer()))).toBe(asset.sha256)
    const single = await storeFile(data)
    const res = await call(`/api/assets/${single.assetId}`, { headers: { range: 'bytes=2000-2999' } })
    expect(res.status).toBe(206)
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(data.subarray(2000, 3000)))).toBe(true)
  })

  it('an empty file: 200 with no bytes, and any range is unsatisfiable', async () => {
    const empty = await storeFile(new Uint8Array(0))
    const res = await call(`/api/assets/${empty.assetId}`)
    expect(res.status).toBe(200)
    expect((await res.arrayBuffer()).byteLength).toBe(0)
    expect((await call(`/api/assets/${empty.assetId}`, { headers: { range: 'bytes=0-' } })).status).toBe(416)
  })
})

describe('links in the event feed', () => {
  it('asset_created and done carry signed links that load with no header; the stored log keeps the plain path', async () => {
    const submitted = await call('/api/jobs', { method: 'POST', json: { kind: 'render', input: { width: 24, height: 16, maxIterations: 20 } } })
    const { jobId } = await submitted.json()
    const { events } = await api.follow(jobId)
    const created = events.find((e) => e.type === 'asset_created')!.data.asset
    const done = events.at(-1)!
    expect(done.type).toBe('done')
    const signed = new RegExp(`^/api/assets/${created.assetId}\\?exp=\\d+&sig=[A-Za-z0-9_-]{43}$`)
    expect(created.url).toMatch(signed)
    expect(done.data.assets[0].url).toMatch(signed)
    expect(done.data.result.url).toBe(`/api/assets/${created.assetId}`) // the handler's result is not rewritten
    for (const url of [created.url, done.data.assets[0].url]) {
      const res = await call(url, { key: null })
      expect(res.status).toBe(200)
      expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(created.sha256)
    }
    const stored = await api.store.read(`job/${jobId}`)
    expect(stored?.data).toContain(`"url":"/api/assets/${created.assetId}"`)
    expect(stored?.data).not.toContain('sig=')
  })

  it('the event stream carries the same signed links', async () => {
    const submitted = await call('/api/jobs', { method: 'POST', json: { kind: 'render', input: { width: 24, height: 16, maxIterations: 20 } } })
    const { jobId } = await submitted.json()
    await api.follow(jobId)
    const res = await call(`/api/jobs/${jobId}/stream`)
    expect(res.status).toBe(200)
    const events = (await res.text())
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .map((line) => JSON.parse(line.slice(6)))
      .filter((e) => e.type === 'asset_created' || e.type === 'done')
    expect(events.map((e) => e.type)).toEqual(['asset_created', 'done'])
    const url = events[0].data.asset.url as string
    expect(url).toMatch(/\?exp=\d+&sig=/)
    expect(events[1].data.assets[0].url).toBe(url)
    expect((await call(url, { key: null })).status).toBe(200)
  })
})
