/**
 * One contract for the storage port, run against every implementation: the
 * Blobs adapter over the real local server, and the in-memory store.
 * Then the adapter's distrust of the SDK, with faults injected into its fetch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { getStore } from '@netlify/blobs'
import { memoryPort } from '../lib/storage/memory.ts'
import { netlifyBlobsPort } from '../lib/storage/netlify-blobs.ts'
import { type BlobPort, StorageUnavailableError } from '../lib/storage/port.ts'
import { type TestBlobs, startBlobs } from './support/blobs.ts'

let blobs: TestBlobs
beforeAll(async () => {
  blobs = await startBlobs()
})
afterAll(async () => {
  await blobs.stop()
})

let storeCounter = 0
const implementations: [string, () => BlobPort][] = [
  ['netlify blobs (local server)', () => blobs.port(`contract-${++storeCounter}`)],
  ['memory', () => memoryPort()],
]

describe.each(implementations)('storage port contract: %s', (_name, make) => {
  it('reads what create wrote, with a version; absent keys read as null', async () => {
    const store = make()
    expect(await store.read('a/b')).toBeNull()
    const created = await store.create('a/b', 'one')
    expect(created.ok).toBe(true)
    const read = await store.read('a/b')
    expect(read?.data).toBe('one')
    expect(read?.version).toBeTruthy()
    if (created.ok) expect(read?.version).toBe(created.version)
  })

  it('create refuses an existing key and leaves it unchanged', async () => {
    const store = make()
    await store.create('k', 'first')
    expect(await store.create('k', 'second')).toEqual({ ok: false })
    expect((await store.read('k'))?.data).toBe('first')
  })

  it('replace succeeds only on the version read, and gives a new version', async () => {
    const store = make()
    await store.create('k', 'v1')
    const v1 = (await store.read('k'))!.version
    const replaced = await store.replace('k', 'v2', v1)
    expect(replaced.ok).toBe(true)
    if (replaced.ok) expect(replaced.version).not.toBe(v1)
    expect(await store.replace('k', 'v3', v1)).toEqual({ ok: false })
    expect((await store.read('k'))?.data).toBe('v2')
  })

  it('replace of a missing key is a conflict, and an empty version is refused', async () => {
    const store = make()
    expect(await store.replace('missing', 'x', '"nope"')).toEqual({ ok: false })
    expect(await store.read('missing')).toBeNull()
    await store.create('k', 'v1')
    await expect(store.replace('k', 'x', '')).rejects.toThrow(/unconditional/)
    expect((await store.read('k'))?.data).toBe('v1')
  })

  it('put overwrites; delete removes and is idempotent', async () => {
    const store = make()
    await store.put('k', 'a')
    await store.put('k', 'b')
    expect((await store.read('k'))?.data).toBe('b')
    await store.delete('k')
    await store.delete('k')
    expect(await store.read('k')).toBeNull()
  })

  it('lists keys by prefix, and folders one level down with directories', async () => {
    const store = make()
    await store.put('x/1/a', '')
    await store.put('x/1/b', '')
    await store.put('x/2/a', '')
    await store.put('x/top', '')
    await store.put('y/1', '')
    const all = await store.list('x/')
    expect(all.keys.sort()).toEqual(['x/1/a', 'x/1/b', 'x/2/a', 'x/top'])
    const dirs = await store.list('x/', { directories: true })
    expect(dirs.keys).toEqual(['x/top'])
    expect(dirs.directories.sort()).toEqual(['x/1', 'x/2'])
  })
})

describe('the Blobs adapter does not trust ambiguous SDK answers', () => {
  type Fault = (url: string, init: RequestInit | undefined, forward: () => Promise<Response>) => Promise<Response>
  const withFault = (fault: Fault) => {
    const store = getStore({
      name: `faults-${++storeCounter}`,
      siteID: blobs.siteID,
      token: blobs.token,
      edgeURL: blobs.url,
      uncachedEdgeURL: blobs.url,
      consistency: 'strong',
      fetch: (input, init) => {
        const url = String(input instanceof Request ? input.url : input)
        return fault(url, init, () => fetch(input, init))
      },
    })
    return netlifyBlobsPort(store)
  }
  const isConditionalPut = (init?: RequestInit) => {
    const headers = new Headers(init?.headers)
    return init?.method?.toUpperCase() === 'PUT' && (headers.has('if-none-match') || headers.has('if-match'))
  }

  it('a write that landed but whose answer was lost (retry sees 412) is reported as done', async () => {
    let lost = 0
    const store = withFault(async (_url, init, forward) => {
      const res = await forward()
      if (isConditionalPut(init) && lost++ === 0) return new Response(null, { status: 503 })
      return res
    })
    const created = await store.create('k', 'mine')
    expect(created.ok).toBe(true)
    expect((await store.read('k'))?.data).toBe('mine')
    const version = (await store.read('k'))!.version
    lost = 0
    const replaced = await store.replace('k', 'mine again', version)
    expect(replaced.ok).toBe(true)
    expect(lost).toBeGreaterThan(1) // the SDK did retry and got 412
  })

  it('a write reported done with an empty ETag that never landed (netlify/primitives#741) is an error, not success', async () => {
    const store = withFault(async (_url, init, forward) =>
      isConditionalPut(init) ? new Response(null, { status: 503 }) : forward(),
    )
    await expect(store.create('k', 'x')).rejects.toBeInstanceOf(StorageUnavailableError)
    expect(await store.read('k')).toBeNull()
  })

  it('a genuine conflict is still a conflict', async () => {
    const store = withFault((_url, _init, forward) => forward())
    await store.create('k', 'theirs')
    expect(await store.create('k', 'mine')).toEqual({ ok: false })
    const version = (await store.read('k'))!.version
    await store.replace('k', 'theirs 2', version)
    expect(await store.replace('k', 'mine', version)).toEqual({ ok: false })
    expect((await store.read('k'))?.data).toBe('theirs 2')
  })
})
