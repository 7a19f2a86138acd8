/**
 * The client's `downloadAsset` against the real function modules over HTTP
 * and the real local Blobs server: one request for a small file, parts with
 * Range and If-Range for a big one (beyond what one answer may carry), the
 * sha256 checked, lost parts retried, signed links followed.
 */
import { createHash, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { saveJobAsset } from '../lib/assets/assets.ts'
import { assetLinks } from '../lib/assets/links.ts'
import { writeParts } from '../lib/assets/parts.ts'
import type { AssetRecord } from '../lib/assets/record.ts'
import { type ClientClock, createClient } from '../lib/client/index.ts'
import { systemClock } from '../lib/core/clock.ts'
import { randomIds } from '../lib/core/ids.ts'
import { purposeKey } from '../lib/core/signing.ts'
import { testApi } from './support/api.ts'
import { testDeps } from './support/deps.ts'

const api = testApi({ accounts: { 'dl-a': 10 } })
beforeAll(() => api.start())
afterAll(() => api.stop())

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')

/** A client whose requests are recorded (Range and If-Range of each) and whose sleeps take no time. */
function recordingClient(options: { apiKey?: string; failOnce?: (n: number) => boolean } = {}) {
  const requests: { range: string | null; ifRange: string | null; auth: string | null }[] = []
  const sleeps: number[] = []
  const clock: ClientClock = { now: () => Date.now(), sleep: async (ms) => void sleeps.push(ms) }
  const client = createClient({
    baseUrl: api.url,
    apiKey: options.apiKey ?? api.key('dl-a'),
    clock,
    fetch: async (input, init) => {
      const headers = new Headers(init?.headers)
      requests.push({ range: headers.get('range'), ifRange: headers.get('if-range'), auth: headers.get('authorization') })
      if (options.failOnce?.(requests.length)) throw new TypeError('fetch failed')
      return fetch(input, init)
    },
  })
  return { client, requests, sleeps }
}

async function store(data: Uint8Array, change: Partial<AssetRecord> = {}) {
  const now = Date.now()
  const record: AssetRecord = {
    assetId: randomIds('asset'),
    account: 'dl-a',
    jobId: randomIds('job'),
    sourceTaskId: null,
    filename: 'f.bin',
    contentType: 'application/octet-stream',
    bytes: data.byteLength,
    sha256: sha256(data),
    createdAt: now,
    expiresAt: now + 3600_000,
    ...change,
  }
  await writeParts(api.generated, record, data, record)
  return record
}

const bytesOf = async (blob: Blob) => new Uint8Array(await blob.arrayBuffer())

describe('downloadAsset in parts', () => {
  it('a small file: one request', async () => {
    const data = randomBytes(3000)
    const asset = await store(data)
    const { client, requests } = recordingClient()
    const blob = await client.downloadAsset(asset.assetId)
    expect(sha256(await bytesOf(blob))).toBe(asset.sha256)
    expect(blob.type).toBe('application/octet-stream')
    expect(requests).toHaveLength(1)
  })

  it('a 17 MiB file saved by a job (8 MiB parts): three ranged requests under the response cap, bound by If-Range, sha256 checked', async () => {
    const deps = { ...testDeps(api.store, { clock: systemClock }), assets: api.generated }
    const data = randomBytes(17 * 1024 * 1024)
    const saved = await saveJobAsset(deps, { jobId: randomIds('job'), account: 'dl-a', sourceTaskId: null }, { filename: 'big.bin', contentType: 'application/octet-stream', data }, async () => {})
    const { client, requests } = recordingClient()
    const progress: number[] = []
    const blob = await client.downloadAsset(saved.url, { onProgress: ({ received, total }) => progress.push(received / total) })
    expect(blob.size).toBe(data.byteLength)
    expect(sha256(await bytesOf(blob))).toBe(saved.sha256)
    const MiB = 1024 * 1024
    expect(requests.map((r) => r.range)).toEqual([`bytes=0-${8 * MiB - 1}`, `bytes=${8 * MiB}-${16 * MiB - 1}`, `bytes=${16 * MiB}-${17 * MiB - 1}`])
    expect(requests.map((r) => r.ifRange)).toEqual([null, `"${saved.sha256}"`, `"${saved.sha256}"`])
    expect(progress.at(-1)).toBe(1)
    expect(progress).toEqual([...progress].sort((a, b) => a - b))

    // Parts bigger than one answer may carry: the server cuts each at 16 MiB and the client goes on from there.
    const wide = recordingClient()
    expect(sha256(await bytesOf(await wide.client.downloadAsset(saved.assetId, { partBytes: 64 * MiB })))).toBe(saved.sha256)
    expect(wide.requests.map((r) => r.range)).toEqual([`bytes=0-${64 * MiB - 1}`, `bytes=${16 * MiB}-${17 * MiB - 1}`])
  })

  it('a part lost on the way is asked again, and the file still checks', async () => {
    const data = randomBytes(10_000)
    const asset = await store(data, { partBytes: 1000 })
    const { client, requests, sleeps } = recordingClient({ failOnce: (n) => n === 3 })
    const blob = await client.downloadAsset(asset.assetId, { partBytes: 4000 })
    expect(sha256(await bytesOf(blob))).toBe(asset.sha256)
    expect(requests.map((r) => r.range)).toEqual(['bytes=0-3999', 'bytes=4000-7999', 'bytes=8000-9999', 'bytes=8000-9999'])
    expect(sleeps).toHaveLength(1)
  })

  it('bytes that do not hash to the sha256 are refused with AssetIntegrityError', async () => {
    const data = randomBytes(5000)
    const asset = await store(data, { sha256: sha256(randomBytes(8)), partBytes: 1024 })
    const { client } = recordingClient()
    await expect(client.downloadAsset(asset.assetId)).rejects.toMatchObject({ name: 'AssetIntegrityError' })
    await expect(client.downloadAsset(asset.assetId, { partBytes: 2000 })).rejects.toMatchObject({ name: 'AssetIntegrityError' })
  })

  it('an empty file, and a signed link followed with no valid key', async () => {
    const empty = await store(new Uint8Array(0))
    const { client, requests } = recordingClient()
    expect((await client.downloadAsset(empty.assetId)).size).toBe(0)
    expect(requests.map((r) => r.range)).toEqual(['bytes=0-8388607', null])

    const data = randomBytes(2500)
    const asset = await store(data)
    const link = assetLinks(purposeKey(api.signingSecret, 'asset-link'), 'dl-a', Date.now()).link(asset.assetId)
    const stranger = recordingClient({ apiKey: 'djk_nobody.invalid' })
    expect(sha256(await bytesOf(await stranger.client.downloadAsset(`${api.url}${link}`, { partBytes: 1000 })))).toBe(asset.sha256)
    expect(stranger.requests).toHaveLength(3)
    await expect(stranger.client.downloadAsset(asset.assetId)).rejects.toMatchObject({ status: 401 })
  })
})
