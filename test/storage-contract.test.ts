/**
 * One contract for the storage port, run against every implementation: the
 * Blobs adapter over the real local server, and the in-memory store.
 * Then the adapter's distrust of the SDK, with faults injected into its fetch.
 */
import { describe, expect, it } from 'vitest'
import { memoryPort } from '../lib/storage/memory.ts'
import { netlifyBlobsPort } from '../lib/storage/netlify-blobs.ts'
import { type BlobPort, StorageUnavailableError } from '../lib/storage/port.ts'
import { useBlobs } from './support/blobs.ts'
import { storagePortContract } from './support/storage-contract.ts'

const blobs = useBlobs()

let storeCounter = 0
const implementations: [string, () => BlobPort][] = [
  ['netlify blobs (local server)', () => blobs.port(`contract-${++storeCounter}`)],
  ['memory', () => memoryPort()],
]

for (const [name, make] of implementations) storagePortContract(name, make)

describe('the Blobs adapter does not trust ambiguous SDK answers', () => {
  type Fault = (url: string, init: RequestInit | undefined, forward: () => Promise<Response>) => Promise<Response>
  const withFault = (fault: Fault) => {
    const store = blobs.sdkStore(`faults-${++storeCounter}`, {
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
