/** Reads a stream to its end, counting chunks (a streamed body arrives in more than one). */
export async function readStream(stream: ReadableStream<Uint8Array>): Promise<{ bytes: Buffer; chunks: number }> {
  const reader = stream.getReader()
  const parts: Uint8Array[] = []
  for (let next = await reader.read(); !next.done; next = await reader.read()) parts.push(next.value)
  return { bytes: Buffer.concat(parts), chunks: parts.length }
}
