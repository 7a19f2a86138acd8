import type { BlobListing, BlobPort, VersionedBlob, WriteOutcome } from './port.ts'

/**
 * An in-memory store with truly atomic conditional writes. It exists for
 * tests that need what the local Blobs sandbox cannot give (atomicity under
 * real concurrency, injected faults) and passes the same contract suite as
 * the Blobs adapter.
 */
export interface MemoryPort extends BlobPort {
  /** Number of stored keys, and a copy of everything, for assertions. */
  snapshot(): Map<string, string>
}

export function memoryPort(): MemoryPort {
  const entries = new Map<string, { data: string; version: string }>()
  let counter = 0
  const nextVersion = () => `"m${(++counter).toString(36)}"`

  return {
    async read(key): Promise<VersionedBlob | null> {
      const entry = entries.get(key)
      return entry ? { data: entry.data, version: entry.version } : null
    },
    async create(key, data): Promise<WriteOutcome> {
      if (entries.has(key)) return { ok: false }
      const version = nextVersion()
      entries.set(key, { data, version })
      return { ok: true, version }
    },
    async replace(key, data, version): Promise<WriteOutcome> {
      if (!version) throw new TypeError(`replace("${key}") needs the version it read; refusing an unconditional write`)
      const entry = entries.get(key)
      if (!entry || entry.version !== version) return { ok: false }
      const next = nextVersion()
      entries.set(key, { data, version: next })
      return { ok: true, version: next }
    },
    async put(key, data) {
      entries.set(key, { data, version: nextVersion() })
    },
    async delete(key) {
      entries.delete(key)
    },
    async list(prefix, options = {}): Promise<BlobListing> {
      const keys: string[] = []
      const directories = new Set<string>()
      for (const key of [...entries.keys()].sort()) {
        if (!key.startsWith(prefix)) continue
        const slash = key.indexOf('/', prefix.length)
        if (options.directories && slash !== -1) directories.add(key.slice(0, slash))
        else keys.push(key)
      }
      return { keys, directories: [...directories] }
    },
    snapshot() {
      return new Map([...entries].map(([key, entry]) => [key, entry.data]))
    },
  }
}
