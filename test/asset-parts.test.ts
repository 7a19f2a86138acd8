/**
 * Files stored in parts and the range rules, at the domain level: the
 * in-memory asset port where only layout matters, and the reaper with a
 * clock the test moves.
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { saveJobAsset } from '../lib/assets/assets.ts'
import { ASSET_PART_BYTES, readRange, writeParts } from '../lib/assets/parts.ts'
import { type AssetRecord, deleteAsset, readAssetRecord } from '../lib/assets/record.ts'
import { reapAsset } from '../lib/assets/reap.ts'
import { decideRange, ifRangeHolds } from '../lib/http/range.ts'
import { assetKeys } from '../lib/storage/keys.ts'
import { memoryAssetPort } from '../lib/storage/memory-assets.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import { manualClock, testDeps } from './support/deps.ts'

async function collect(stream: ReadableStream<Uint8Array>) {
  const chunks: Uint8Array[] = []
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk)
  return Buffer.concat(chunks)
}

describe('decideRange', () => {
  it('cuts a satisfiable range to the most one answer may carry', () => {
    expect(decideRange('bytes=0-', 500, 100)).toEqual({ kind: 'partial', range: { start: 0, end: 99 } })
    expect(decideRange('bytes=450-', 500, 100)).toEqual({ kind: 'partial', range: { start: 450, end: 499 } })
    expect(decideRange('bytes=-300', 500, 100)).toEqual({ kind: 'partial', range: { start: 200, end: 299 } })
    expect(decideRange('bytes=10-19', 500, 100)).toEqual({ kind: 'partial', range: { start: 10, end: 19 } })
  })

  it('treats huge numbers as positions past the end, not as errors', () => {
    expect(decideRange(`bytes=${'9'.repeat(30)}-`, 500, 100)).toEqual({ kind: 'unsatisfiable' })
    expect(decideRange(`bytes=0-${'9'.repeat(30)}`, 500, 1000)).toEqual({ kind: 'partial', range: { start: 0, end: 499 } })
    expect(decideRange(`bytes=-${'9'.repeat(30)}`, 500, 1000)).toEqual({ kind: 'partial', range: { start: 0, end: 499 } })
    expect(decideRange(`bytes=0-${'1'.repeat(300)}`, 500, 1000)).toEqual({ kind: 'full' }) // an overlong header is ignored
  })

  it('If-Range holds only for the exact strong ETag', () => {
    expect(ifRangeHolds(null, '"a"')).toBe(true)
    expect(ifRangeHolds(' "a" ', '"a"')).toBe(true)
    expect(ifRangeHolds('W/"a"', '"a"')).toBe(false)
    expect(ifRangeHolds('"a", "b"', '"a"')).toBe(false)
  })
})

describe('files in parts', () => {
  const layout = (bytes: number, partBytes?: number): AssetRecord => ({
    assetId: `asset_abcdefgh${'0'.repeat(32)}`,
    account: 'a',
    jobId: 'job_x',
    sourceTaskId: null,
    filename: 'f',
    contentType: 'application/octet-stream',
    bytes,
    sha256: '0'.repeat(64),
    createdAt: 0,
    expiresAt: 1,
    ...(partBytes === undefined ? {} : { partBytes }),
  })

  it('reads any range back exactly, at every boundary', async () => {
    const assets = memoryAssetPort()
    const data = randomBytes(1000)
    const record = layout(1000, 100)
    await writeParts(assets, record, data, record)
    expect(assets.keys()).toHaveLength(10)
    for (const [start, end] of [[0, 999], [0, 0], [99, 100], [100, 199], [150, 849], [999, 999], [0, 99], [900, 999]] as const) {
      expect((await collect(readRange(assets, record, { start, end }))).equals(data.subarray(start, end + 1)), `${start}-${end}`).toBe(true)
    }
  })

  it('writes the record last and deletes it last, later parts included', async () => {
    const assets = memoryAssetPort()
    const writes: string[] = []
    const watched = { ...assets, put: (key: string, data: Uint8Array, metadata: Record<string, unknown>) => (writes.push(key), assets.put(key, data, metadata)) }
    const record = layout(250, 100)
    await writeParts(watched, record, randomBytes(250), record)
    expect(writes.at(-1)).toBe(assetKeys.asset(record.assetId))
    expect(writes).toHaveLength(3)
    await deleteAsset(assets, record)
    expect(assets.keys()).toEqual([])
  })

  it('saveJobAsset stores a file over one part in parts of ASSET_PART_BYTES, and the whole file reads back', async () => {
    const deps = testDeps(memoryPort())
    const data = randomBytes(ASSET_PART_BYTES * 2 + 5)
    const saved = await saveJobAsset(deps, { jobId: 'job_x', account: 'a', sourceTaskId: null }, { filename: 'big.bin', contentType: 'application/octet-stream', data }, async () => {})
    const record = (await deps.assets.metadata(assetKeys.asset(saved.assetId))) as AssetRecord
    expect(record.partBytes).toBe(ASSET_PART_BYTES)
    expect(await deps.assets.list(assetKeys.partPrefix(saved.assetId))).toEqual([assetKeys.part(saved.assetId, 1), assetKeys.part(saved.assetId, 2)])
    expect((await collect(readRange(deps.assets, record, { start: 0, end: data.byteLength - 1 }))).equals(data)).toBe(true)
    const small = await saveJobAsset(deps, { jobId: 'job_x', account: 'a', sourceTaskId: null }, { filename: 's.bin', contentType: 'text/plain', data: randomBytes(10) }, async () => {})
    expect(await deps.assets.metadata(assetKeys.asset(small.assetId))).not.toHaveProperty('partBytes')
  })

  it('a record naming more parts than any save makes is unreadable: a 404 to readers, left to an operator by the reaper', async () => {
    const deps = testDeps(memoryPort())
    const record = layout(10 ** 12, 1)
    await deps.assets.put(assetKeys.asset(record.assetId), new Uint8Array(1), record)
    expect(await readAssetRecord(deps.assets, record.assetId)).toBeNull()
    await expect(reapAsset(deps, record.assetId)).rejects.toMatchObject({ name: 'CorruptRecordError' })
  })

  it('the reaper deletes parts a save left without its record', async () => {
    const clock = manualClock()
    const deps = testDeps(memoryPort(), { clock })
    const record = layout(300, 100)
    await writeParts(deps.assets, record, randomBytes(300), record)
    await deps.assets.delete(assetKeys.asset(record.assetId)) // as if the save died before its last write
    expect(await deps.assets.list('')).toHaveLength(2)
    expect(await reapAsset(deps, record.assetId)).toBe('gone')
    expect(await deps.assets.list('')).toEqual([])
  })
})
