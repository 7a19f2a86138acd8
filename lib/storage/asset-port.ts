/**
 * The storage port for generated files (assets). Unlike `BlobPort` it carries
 * bytes, not JSON text, and reads them as a stream so a large file is never
 * held in memory by whoever serves it. Each blob carries a small JSON
 * metadata object (Netlify Blobs caps metadata at 2 KB), which the domain
 * parses; nobody competes for an asset key, so writes are unconditional.
 */
export type AssetMetadata = Record<string, unknown>

export interface AssetPort {
  /** Writes bytes (or a stream of them) with metadata, replacing whatever was at `key`. */
  put(key: string, data: Uint8Array | ReadableStream<Uint8Array>, metadata: AssetMetadata): Promise<void>
  /** The metadata alone, without opening the bytes. `null` when absent. */
  metadata(key: string): Promise<AssetMetadata | null>
  /** The bytes as a stream, with the metadata. The caller must consume or cancel `body`. */
  stream(key: string): Promise<{ body: ReadableStream<Uint8Array>; metadata: AssetMetadata } | null>
  /** Deletes a key; deleting a missing key is not an error. */
  delete(key: string): Promise<void>
  /** Every key under a prefix (no directory grouping: asset prefixes are narrow). */
  list(prefix: string): Promise<string[]>
}
