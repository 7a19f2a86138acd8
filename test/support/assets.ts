/** Generated-file helpers for tests: the Blobs asset port on the test server, and stream reading. */
import { getStore } from '@netlify/blobs'
import type { AssetPort } from '../../lib/storage/asset-port.ts'
import { netlifyBlobsAssetPort } from '../../lib/storage/netlify-blobs-assets.ts'
import type { TestBlobs } from './blobs.ts'

export function assetPortOf(blobs: TestBlobs, storeName: string): AssetPort {
  const { siteID, token, url } = blobs
  return netlifyBlobsAssetPort(getStore({ name: storeName, siteID, token, edgeURL: url, uncachedEdgeURL: url, consistency: 'strong' }))
}

/** Reads a stream to its end, counting chunks (a streamed body arrives in more than one). */
export async function readStream(stream: ReadableStream<Uint8Array>): Promise<{ bytes: Buffer; chunks: number }> {
  const reader = stream.getReader()
  const parts: Uint8Array[] = []
  for (let next = await reader.read(); !next.done; next = await reader.read()) parts.push(next.value)
  return { bytes: Buffer.concat(parts), chunks: parts.length }
}
