import type { Store } from '@netlify/blobs'
import type { AssetMetadata, AssetPort } from './asset-port.ts'
import { StorageUnavailableError } from './port.ts'

/**
 * The asset port over a Netlify Blobs store (the caller creates it with
 * strong consistency: a download right after its job finished must find it).
 * Reads hand back the response body of the Blobs request itself, so bytes
 * flow through without being collected in memory.
 */
export function netlifyBlobsAssetPort(store: Store): AssetPort {
  return {
    async put(key, data, metadata) {
      // The SDK's types list string | ArrayBuffer | Blob, but it sends a
      // ReadableStream too (it sets `duplex: 'half'` for one). A stream cannot
      // be replayed by the SDK's retries: a failed upload surfaces as
      // StorageUnavailableError and the caller starts again with a new stream.
      const body = data instanceof ReadableStream ? (data as unknown as Blob) : exactBuffer(data)
      await guard(() => store.set(key, body, { metadata }))
    },

    async metadata(key) {
      const entry = await guard(() => store.getMetadata(key, { consistency: 'strong' }))
      return entry ? (entry.metadata as AssetMetadata) : null
    },

    async stream(key) {
      const entry = await guard(() => store.getWithMetadata(key, { type: 'stream', consistency: 'strong' }))
      if (!entry?.data) return null
      return { body: entry.data as ReadableStream<Uint8Array>, metadata: entry.metadata as AssetMetadata }
    },

    async delete(key) {
      await guard(() => store.delete(key))
    },

    async list(prefix) {
      const { blobs } = await guard(() => store.list({ prefix }))
      return blobs.map((blob) => blob.key)
    },
  }
}

/** The bytes as an ArrayBuffer of exactly their length, copying only when the view is part of a larger buffer. */
function exactBuffer(data: Uint8Array): ArrayBuffer {
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer
  // Not `data.slice()`: on a Node Buffer that is a view of the same memory, and its
  // `.buffer` is the whole shared pool (8 KB of other requests' bytes).
  return whole ? (data.buffer as ArrayBuffer) : (Uint8Array.prototype.slice.call(data).buffer as ArrayBuffer)
}

async function guard<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (error) {
    throw new StorageUnavailableError('Netlify Blobs request failed', { cause: error })
  }
}
