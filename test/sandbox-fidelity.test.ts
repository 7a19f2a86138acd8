// Fidelity tests for the local Netlify Blobs sandbox (`BlobsServer`), as patched by
// patches/@netlify+blobs+11.1.1.patch. They pin down the production behaviour that
// the durable-jobs code relies on: atomic conditional writes, unique per-write
// ETags, ETags on reads, and consistent data/metadata pairs.
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

import type { Store } from '@netlify/blobs'
import { beforeAll, describe, expect, it } from 'vitest'
import { useBlobs } from './support/blobs.ts'

// Full counts here and in `npm run test:soak`; `npm test` and `npm run test:unit` run fewer
// (vitest.config.ts). Unpatched, the concurrent trials failed in every trial, a stale ETag was
// accepted in about 1 sequential trial in 50.
const TRIALS = Number(process.env.SANDBOX_TRIALS ?? 50)
const WRITERS = 20
const SEQUENTIAL_TRIALS = Number(process.env.SANDBOX_SEQUENTIAL_TRIALS ?? 200)
// getStore() namespaces site-wide stores as `site:<name>` on disk and in URLs.
const STORE_PATH = 'site:fidelity'
// Reserved metadata field the patch uses to persist the per-write ETag.
const RESERVED_FIELD = '__netlifyBlobsSandboxETag'

const blobs = useBlobs()
let store: Store
beforeAll(() => {
  store = blobs.sdkStore('fidelity')
})

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/**
 * Runs independent trials (each on its own key) ten at a time: every trial
 * keeps its own sequence and assertions, the server sees more at once.
 */
const trialsAtOnce = async (trials: number, run: (trial: number) => Promise<void>) => {
  for (let first = 0; first < trials; first += 10) await Promise.all(range(Math.min(10, trials - first)).map((i) => run(first + i)))
}

// Histogram "number of winners -> number of trials"; a correct server gives { 1: TRIALS }.
const tally = (histogram: Record<number, number>, winners: number) => {
  histogram[winners] = (histogram[winners] ?? 0) + 1
}

const listETags = async (prefix: string) => {
  const { blobs } = await store.list({ prefix })
  return new Map(blobs.map((blob) => [blob.key, blob.etag]))
}

describe('BlobsServer sandbox fidelity', () => {
  it(`onlyIfNew: exactly one of ${WRITERS} concurrent writers wins (${TRIALS} trials)`, async () => {
    const winnersPerTrial: Record<number, number> = {}
    await trialsAtOnce(TRIALS, async (trial) => {
      const key = `only-if-new/${trial}`
      const results = await Promise.all(
        range(WRITERS).map((writer) => store.set(key, `writer-${writer}`, { onlyIfNew: true })),
      )
      const winners = results.flatMap((result, writer) => (result.modified ? [{ writer, etag: result.etag }] : []))
      tally(winnersPerTrial, winners.length)
      if (winners.length !== 1) return
      const [winner] = winners
      const stored = await store.getWithMetadata(key)
      expect(stored?.data).toBe(`writer-${winner!.writer}`)
      expect(stored?.etag).toBe(winner!.etag)
    })
    expect(winnersPerTrial).toEqual({ 1: TRIALS })
  })

  it(`onlyIfMatch: exactly one of ${WRITERS} concurrent writers with the same ETag wins (${TRIALS} trials)`, async () => {
    const winnersPerTrial: Record<number, number> = {}
    await trialsAtOnce(TRIALS, async (trial) => {
      const key = `only-if-match/${trial}`
      const { etag } = await store.set(key, 'initial')
      expect(etag).toBeTruthy()
      const results = await Promise.all(
        range(WRITERS).map((writer) => store.set(key, `writer-${writer}`, { onlyIfMatch: etag! })),
      )
      const winners = results.flatMap((result, writer) => (result.modified ? [{ writer, etag: result.etag }] : []))
      tally(winnersPerTrial, winners.length)
      if (winners.length !== 1) return
      const [winner] = winners
      expect(winner!.etag).not.toBe(etag)
      const stored = await store.getWithMetadata(key)
      expect(stored?.data).toBe(`writer-${winner!.writer}`)
      expect(stored?.etag).toBe(winner!.etag)
    })
    expect(winnersPerTrial).toEqual({ 1: TRIALS })
  })

  it(`back-to-back writes get distinct ETags and a stale ETag is rejected (${SEQUENTIAL_TRIALS} trials)`, async () => {
    let sameETag = 0
    let staleAccepted = 0
    await trialsAtOnce(SEQUENTIAL_TRIALS, async (trial) => {
      const key = `sequential/${trial}`
      const first = await store.set(key, 'first')
      const second = await store.set(key, 'second')
      expect(first.etag).toBeTruthy()
      expect(second.etag).toBeTruthy()
      if (first.etag === second.etag) sameETag++
      const stale = await store.set(key, 'stale', { onlyIfMatch: first.etag! })
      if (stale.modified) {
        staleAccepted++
        return
      }
      expect(await store.get(key)).toBe('second')
      const fresh = await store.set(key, 'third', { onlyIfMatch: second.etag! })
      expect(fresh.modified).toBe(true)
      expect(fresh.etag).not.toBe(second.etag)
    })
    expect({ sameETag, staleAccepted }).toEqual({ sameETag: 0, staleAccepted: 0 })
  })

  it(`two overlapping writes get distinct ETags and the loser's ETag is stale (${SEQUENTIAL_TRIALS} trials)`, async () => {
    // Unconditional writes that land in the same millisecond: the old mtime-based
    // ETag gave both the same value.
    let sameETag = 0
    let staleAccepted = 0
    let readETagMismatch = 0
    await trialsAtOnce(SEQUENTIAL_TRIALS, async (trial) => {
      const key = `overlapping/${trial}`
      const [a, b] = await Promise.all([store.set(key, 'a'), store.set(key, 'b')])
      if (a.etag === b.etag) sameETag++
      const current = await store.getWithMetadata(key)
      const [winner, loser] = current?.data === 'a' ? [a, b] : [b, a]
      if (current?.etag !== winner.etag) readETagMismatch++
      if ((await store.set(key, 'stale', { onlyIfMatch: loser.etag! })).modified) staleAccepted++
    })
    expect({ sameETag, staleAccepted, readETagMismatch }).toEqual({ sameETag: 0, staleAccepted: 0, readETagMismatch: 0 })
  })

  it('getWithMetadata, getMetadata and list() report the ETag returned by set()', async () => {
    const prefix = 'agree/'
    const written = new Map<string, string>()
    for (const i of range(TRIALS)) {
      const key = `${prefix}${i}`
      const { etag } = await store.set(key, `value-${i}`, { metadata: { i } })
      expect(etag).toMatch(/^".+"$/)
      written.set(key, etag!)
    }
    const listed = await listETags(prefix)
    expect(listed).toEqual(written)
    for (const [key, etag] of written) {
      const withData = await store.getWithMetadata(key)
      const metadataOnly = await store.getMetadata(key)
      expect(withData?.etag).toBe(etag)
      expect(metadataOnly?.etag).toBe(etag)
    }
  })

  it('user metadata round-trips without the reserved ETag field leaking', async () => {
    const key = 'metadata/round-trip'
    const metadata = { name: 'job', attempts: 3, nested: { ok: true, list: [1, 'two'] }, unicode: 'héllo ✓' }
    const { etag } = await store.set(key, 'payload', { metadata })

    const withData = await store.getWithMetadata(key)
    expect(withData).toEqual({ data: 'payload', etag, metadata })
    expect(withData?.metadata).not.toHaveProperty(RESERVED_FIELD)

    const metadataOnly = await store.getMetadata(key)
    expect(metadataOnly).toEqual({ etag, metadata })
    expect(metadataOnly?.metadata).not.toHaveProperty(RESERVED_FIELD)

    // JSON writes and writes without metadata report empty user metadata.
    const jsonWrite = await store.setJSON(key, { a: 1 })
    expect(await store.getWithMetadata(key, { type: 'json' })).toEqual({
      data: { a: 1 },
      etag: jsonWrite.etag,
      metadata: {},
    })
    const plainWrite = await store.set(key, 'no metadata')
    expect(await store.getMetadata(key)).toEqual({ etag: plainWrite.etag, metadata: {} })

    // The raw HTTP responses carry the ETag header, and only user metadata.
    const res = await fetch(`${blobs.url}/${blobs.siteID}/${STORE_PATH}/${key}`, { headers: { authorization: `Bearer ${blobs.token}` } })
    expect(res.status).toBe(200)
    expect(res.headers.get('etag')).toBe(plainWrite.etag)
    const rawMetadata = res.headers.get('x-amz-meta-user') ?? ''
    expect(Buffer.from(rawMetadata.replace(/^b64;/, ''), 'base64').toString()).toBe('{}')

    // list() only shows real entries (no temp or sidecar files).
    expect([...(await listETags('metadata/')).keys()]).toEqual([key])
  })

  it('getWithMetadata with a current ETag is a 304 (data: null); a stale one returns data', async () => {
    const key = 'conditional-get/entry'
    const first = await store.set(key, 'one', { metadata: { v: 1 } })
    const second = await store.set(key, 'two', { metadata: { v: 2 } })
    expect(await store.getWithMetadata(key, { etag: second.etag! })).toEqual({
      data: null,
      etag: second.etag,
      metadata: { v: 2 },
    })
    expect(await store.getWithMetadata(key, { etag: first.etag! })).toEqual({
      data: 'two',
      etag: second.etag,
      metadata: { v: 2 },
    })
  })

  it(`delete then recreate gives a new ETag and the old one is rejected (${TRIALS} trials)`, async () => {
    const reused: number[] = []
    await trialsAtOnce(TRIALS, async (trial) => {
      const key = `recreate/${trial}`
      const original = await store.set(key, 'original')
      await store.delete(key)
      expect(await store.getMetadata(key)).toBeNull()
      expect(await store.set(key, 'ghost', { onlyIfMatch: original.etag! })).toEqual({ modified: false })
      const recreated = await store.set(key, 'recreated', { onlyIfNew: true })
      expect(recreated.modified).toBe(true)
      if (recreated.etag === original.etag) reused.push(trial)
      const stale = await store.set(key, 'stale', { onlyIfMatch: original.etag! })
      expect(stale.modified).toBe(false)
      expect(await store.getWithMetadata(key)).toEqual({ data: 'recreated', etag: recreated.etag, metadata: {} })
    })
    expect(reused).toEqual([])
  })

  it('entries written before the patch (no stored ETag) keep a consistent mtime-based ETag', async () => {
    const key = 'legacy/entry'
    // Lay the entry out on disk the way the unpatched server did: data + plain user metadata.
    await mkdir(join(blobs.directory, 'entries', blobs.siteID, STORE_PATH, 'legacy'), { recursive: true })
    await mkdir(join(blobs.directory, 'metadata', blobs.siteID, STORE_PATH, 'legacy'), { recursive: true })
    await writeFile(join(blobs.directory, 'entries', blobs.siteID, STORE_PATH, key), 'old data')
    await writeFile(join(blobs.directory, 'metadata', blobs.siteID, STORE_PATH, key), JSON.stringify({ legacy: true }))

    const withData = await store.getWithMetadata(key)
    expect(withData?.data).toBe('old data')
    expect(withData?.metadata).toEqual({ legacy: true })
    expect(withData?.etag).toMatch(/^"[0-9a-f]{64}"$/)
    expect(await store.getMetadata(key)).toEqual({ etag: withData?.etag, metadata: { legacy: true } })
    expect((await listETags('legacy/')).get(key)).toBe(withData?.etag)

    const update = await store.set(key, 'new data', { onlyIfMatch: withData!.etag! })
    expect(update.modified).toBe(true)
    expect(update.etag).not.toBe(withData?.etag)
    expect(await store.set(key, 'stale', { onlyIfMatch: withData!.etag! })).toEqual({ modified: false })
  })

  it(`concurrent readers never see new data with old metadata (${TRIALS} trials)`, async () => {
    const key = 'torn/entry'
    await store.set(key, 'value-0', { metadata: { n: 0 } })
    const torn: string[] = []
    for (const trial of range(TRIALS)) {
      const n = trial + 1
      const ops = range(WRITERS).map(async (i) => {
        if (i === 0) return store.set(key, `value-${n}`, { metadata: { n } })
        if (i % 2 === 0) {
          const listed = await store.list({ prefix: 'torn/' })
          if (listed.blobs.some((blob) => blob.key !== key)) torn.push(`list shows ${listed.blobs.map((b) => b.key)}`)
          return
        }
        const entry = await store.getWithMetadata(key)
        if (entry?.data !== `value-${entry?.metadata.n}`) torn.push(`${entry?.data} / ${JSON.stringify(entry?.metadata)}`)
      })
      await Promise.all(ops)
    }
    expect({ torn: torn.length, samples: torn.slice(0, 3) }).toEqual({ torn: 0, samples: [] })
    // Nothing left behind in the entries tree besides the real blobs.
    expect(await readdir(join(blobs.directory, 'entries', blobs.siteID, STORE_PATH, 'torn'))).toEqual(['entry'])
  })

  it('the per-key lock map is empty once the server is idle', () => {
    const locks = (globalThis as Record<symbol, unknown>)[Symbol.for('netlify.blobs.sandbox.keyLocks')]
    expect(locks).toBeInstanceOf(Map)
    expect((locks as Map<string, unknown>).size).toBe(0)
  })
})
