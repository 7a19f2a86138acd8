import { randomBytes } from 'node:crypto'
import type { Store } from '@netlify/blobs'
import { type BlobListing, type BlobPort, StorageUnavailableError, type VersionedBlob, type WriteOutcome } from './port.ts'

/** Metadata field carrying the writer's token, to confirm ambiguous conditional writes. */
const OWNER_FIELD = 'writeId'

/**
 * The storage port over a Netlify Blobs store. The store is created by the
 * caller (a function adapter or a script) with strong consistency, because
 * every read here may decide a write.
 *
 * It does not trust the SDK's answer to a conditional write blindly:
 * - `{ modified: true, etag: '' }` is what the SDK returns for any non-412
 *   failure (netlify/primitives#741), a write that never happened;
 * - `{ modified: false }` may follow a retried request whose first attempt
 *   landed (the SDK retries 5xx/429 with the same condition, the retry gets 412).
 * Both are settled by reading back the owner token written as metadata.
 */
export function netlifyBlobsPort(store: Store): BlobPort {
  const readVersion = async (key: string): Promise<{ version: string; owner: unknown } | null> => {
    const meta = await guard(() => store.getMetadata(key, { consistency: 'strong' }))
    if (!meta) return null
    const version = meta.etag ?? (await versionFromListing(key))
    if (!version) return null
    return { version, owner: meta.metadata[OWNER_FIELD] }
  }

  // The local sandbox (unpatched) returns no ETag on reads, but lists them.
  // Correct for one caller at a time; the patched sandbox never gets here.
  const versionFromListing = async (key: string): Promise<string | undefined> => {
    const { blobs } = await guard(() => store.list({ prefix: key }))
    return blobs.find((blob) => blob.key === key)?.etag
  }

  const conditionalWrite = async (
    key: string,
    data: string,
    condition: { onlyIfNew: true } | { onlyIfMatch: string },
  ): Promise<WriteOutcome> => {
    const writeId = randomBytes(12).toString('base64url')
    let answer: { modified: boolean; etag?: string } | undefined
    try {
      answer = await store.set(key, data, { ...condition, metadata: { [OWNER_FIELD]: writeId } })
    } catch {
      answer = undefined // network failure after the SDK's retries: outcome unknown
    }
    if (answer?.modified && answer.etag) return { ok: true, version: answer.etag }

    const current = await readVersion(key)
    if (current?.owner === writeId) return { ok: true, version: current.version }
    if (answer && !answer.modified) return { ok: false } // a genuine 412: someone else's write is there

    // Reported done but not there, or no answer at all. If the state we
    // conditioned on is unchanged, nothing was decided: let the caller retry.
    const unchanged = 'onlyIfNew' in condition ? current === null : current?.version === condition.onlyIfMatch
    if (unchanged) throw new StorageUnavailableError(`conditional write to "${key}" did not land`)
    return { ok: false }
  }

  return {
    async read(key): Promise<VersionedBlob | null> {
      const entry = await guard(() => store.getWithMetadata(key, { consistency: 'strong' }))
      if (!entry) return null
      const version = entry.etag ?? (await versionFromListing(key))
      if (!version) return null // deleted between the two calls
      return { data: entry.data, version }
    },

    create: (key, data) => conditionalWrite(key, data, { onlyIfNew: true }),

    async replace(key, data, version) {
      // An empty ETag would make the SDK send an unconditional write.
      if (!version) throw new TypeError(`replace("${key}") needs the version it read; refusing an unconditional write`)
      return conditionalWrite(key, data, { onlyIfMatch: version })
    },

    async put(key, data) {
      await guard(() => store.set(key, data))
    },

    async delete(key) {
      await guard(() => store.delete(key))
    },

    async list(prefix, options = {}): Promise<BlobListing> {
      const result = await guard(() => store.list({ prefix, directories: options.directories ?? false }))
      return { keys: result.blobs.map((blob) => blob.key), directories: result.directories }
    },
  }
}

async function guard<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (error) {
    throw new StorageUnavailableError('Netlify Blobs request failed', { cause: error })
  }
}
