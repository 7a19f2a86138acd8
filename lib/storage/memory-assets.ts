import type { AssetMetadata, AssetPort } from './asset-port.ts'

/**
 * Assets in memory, for tests that do not care where files go. Passes the
 * same contract suite as the Blobs adapter; reads stream in 64 KB chunks
 * like a network body would.
 */
export interface MemoryAssetPort extends AssetPort {
  /** Stored keys, for assertions. */
  keys(): string[]
}

const CHUNK = 64 * 1024

export function memoryAssetPort(): MemoryAssetPort {
  const entries = new Map<string, { data: Uint8Array; metadata: AssetMetadata }>()
  // Metadata goes through JSON like the Blobs header does, so both ports give back the same values.
  const copy = (metadata: AssetMetadata): AssetMetadata => JSON.parse(JSON.stringify(metadata))

  return {
    async put(key, data, metadata) {
      const bytes = data instanceof ReadableStream ? await collect(data) : Uint8Array.prototype.slice.call(data) // a real copy: Buffer#slice would alias the caller's memory
      entries.set(key, { data: bytes, metadata: copy(metadata) })
    },
    async metadata(key) {
      const entry = entries.get(key)
      return entry ? copy(entry.metadata) : null
    },
    async stream(key) {
      const entry = entries.get(key)
      if (!entry) return null
      let offset = 0
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (offset >= entry.data.byteLength) return controller.close()
          controller.enqueue(entry.data.slice(offset, offset + CHUNK))
          offset += CHUNK
        },
      })
      return { body, metadata: copy(entry.metadata) }
    },
    async delete(key) {
      entries.delete(key)
    },
    async list(prefix) {
      return [...entries.keys()].filter((key) => key.startsWith(prefix)).sort()
    },
    keys: () => [...entries.keys()].sort(),
  }
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  const reader = stream.getReader()
  for (let next = await reader.read(); !next.done; next = await reader.read()) chunks.push(next.value)
  return new Uint8Array(Buffer.concat(chunks))
}
