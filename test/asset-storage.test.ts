/**
 * One contract for the asset port (binary files with metadata), run on the
 * Blobs adapter over the real local server and on the in-memory port.
 */
import { createHash, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import type { AssetPort } from '../lib/storage/asset-port.ts'
import { memoryAssetPort } from '../lib/storage/memory-assets.ts'
import { useBlobs } from './support/blobs.ts'
import { readStream } from './support/assets.ts'

const blobs = useBlobs()

let storeCounter = 0
const implementations: [string, () => AssetPort][] = [
  ['netlify blobs (local server)', () => blobs.assetPort(`asset-contract-${++storeCounter}`)],
  ['memory', () => memoryAssetPort()],
]

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')

describe.each(implementations)('asset port contract: %s', (_name, make) => {
  it('stores bytes with metadata; reads the metadata alone and the bytes as a stream', async () => {
    const assets = make()
    const data = randomBytes(300 * 1024) // several chunks, every byte value
    const metadata = { assetId: 'a1', filename: 'räksmörgås "1".png', bytes: data.byteLength, sourceTaskId: null, n: 1.5 }
    await assets.put('asset/a1', data, metadata)
    expect(await assets.metadata('asset/a1')).toEqual(metadata)
    const opened = await assets.stream('asset/a1')
    expect(opened?.metadata).toEqual(metadata)
    const { bytes } = await readStream(opened!.body)
    expect(bytes.byteLength).toBe(data.byteLength)
    expect(sha(bytes)).toBe(sha(data))
  })

  it('a view into a larger buffer stores only its own bytes', async () => {
    const assets = make()
    const backing = randomBytes(1000)
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 100, 50)
    await assets.put('v', view, {})
    const { bytes } = await readStream((await assets.stream('v'))!.body)
    expect(Buffer.compare(bytes, Buffer.from(view))).toBe(0)
  })

  it('takes a stream in, and keeps empty files', async () => {
    const assets = make()
    const parts = [randomBytes(70_000), randomBytes(5), randomBytes(128 * 1024)]
    let i = 0
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (i < parts.length) controller.enqueue(parts[i++]!)
        else controller.close()
      },
    })
    await assets.put('s', stream, { kind: 'streamed' })
    const { bytes } = await readStream((await assets.stream('s'))!.body)
    expect(sha(bytes)).toBe(sha(Buffer.concat(parts)))
    await assets.put('empty', new Uint8Array(0), {})
    expect((await readStream((await assets.stream('empty'))!.body)).bytes.byteLength).toBe(0)
    expect(await assets.metadata('empty')).toEqual({})
  })

  it('absent keys read as null; delete is idempotent; a put replaces', async () => {
    const assets = make()
    expect(await assets.metadata('missing')).toBeNull()
    expect(await assets.stream('missing')).toBeNull()
    await assets.delete('missing')
    await assets.put('k', new Uint8Array([1, 2, 3]), { v: 1 })
    await assets.put('k', new Uint8Array([4]), { v: 2 })
    expect(await assets.metadata('k')).toEqual({ v: 2 })
    expect([...(await readStream((await assets.stream('k'))!.body)).bytes]).toEqual([4])
    await assets.delete('k')
    await assets.delete('k')
    expect(await assets.metadata('k')).toBeNull()
    expect(await assets.stream('k')).toBeNull()
  })

  it('lists every key under a prefix, and only those', async () => {
    const assets = make()
    const empty = new Uint8Array(0)
    for (const key of ['byjob/a/job1/x1', 'byjob/a/job1/x2', 'byjob/a/job10/x3', 'byjob/b/job1/x4', 'asset/x1']) {
      await assets.put(key, empty, {})
    }
    expect((await assets.list('byjob/a/job1/')).sort()).toEqual(['byjob/a/job1/x1', 'byjob/a/job1/x2'])
    expect((await assets.list('byjob/a/')).sort()).toEqual(['byjob/a/job1/x1', 'byjob/a/job1/x2', 'byjob/a/job10/x3'])
    expect(await assets.list('bytask/')).toEqual([])
    await assets.delete('byjob/a/job1/x1')
    expect(await assets.list('byjob/a/job1/')).toEqual(['byjob/a/job1/x2'])
  })
})
