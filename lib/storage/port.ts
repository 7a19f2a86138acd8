/**
 * The one storage port the domain talks to. Everything the product keeps
 * (jobs, events, locks, keys) goes through these six operations, so the
 * domain never sees the Blobs SDK and tests can swap in another store.
 *
 * Every write that decides ownership is conditional: `create` only if the key
 * is absent, `replace` only if the stored version is the one we read. A lost
 * race is a value (`{ ok: false }`), never an exception.
 */
export interface BlobPort {
  /** Reads a key with its version (for `replace`). `null` when absent. */
  read(key: string): Promise<VersionedBlob | null>
  /** Writes only if the key does not exist. */
  create(key: string, data: string): Promise<WriteOutcome>
  /** Writes only if the key exists and its version is still `version`. */
  replace(key: string, data: string, version: string): Promise<WriteOutcome>
  /** Unconditional write, for blobs nobody competes for (immutable content). */
  put(key: string, data: string): Promise<void>
  /** Deletes a key; deleting a missing key is not an error. */
  delete(key: string): Promise<void>
  /** Lists keys (and, with `directories`, the next path segment) under a prefix. */
  list(prefix: string, options?: { directories?: boolean }): Promise<BlobListing>
}

export interface VersionedBlob {
  data: string
  version: string
}

export type WriteOutcome = { ok: true; version: string } | { ok: false }

export interface BlobListing {
  keys: string[]
  /** Only with `directories: true`: prefixes one level below, ending without '/'. */
  directories: string[]
}

/**
 * Storage answered with an error (after its own retries) or its answer could
 * not be trusted. Retryable: nothing was decided.
 */
export class StorageUnavailableError extends Error {
  override name = 'StorageUnavailableError'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}

/**
 * A storage call tried again, with backoff (0.2, 0.4, 0.8 s), while storage
 * fails for a moment, so a blip does not fail a job. Only for calls that are
 * safe to repeat: a read, a create-only write, an idempotent put.
 */
export async function rideOutUnavailable<T>(clock: { sleep(ms: number): Promise<void> }, call: () => Promise<T>, retries = 3): Promise<T> {
  for (let failures = 0; ; failures++) {
    try {
      return await call()
    } catch (error) {
      if (!(error instanceof StorageUnavailableError) || failures >= retries) throw error
      await clock.sleep(200 * 2 ** failures)
    }
  }
}
