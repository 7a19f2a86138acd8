/**
 * Files stored in parts, so a byte range is served by reading only the parts
 * it overlaps (Blobs reads a whole blob; it has no ranged read). A file of up
 * to `partBytes` is one blob, `asset/<id>`, as before parts existed. A larger
 * one keeps its first part there, with the record as metadata, and the rest
 * in `part/<id>/<n>`. The parts are written before `asset/<id>`, so a record
 * that can be read always has every part behind it.
 */
import type { AssetPort } from '../storage/asset-port.ts'
import { assetKeys } from '../storage/keys.ts'
import type { ByteRange } from '../http/range.ts'

/** 8 MiB: a client's 8 MiB range reads exactly one part, and a part is far below the 20 MB response cap. */
export const ASSET_PART_BYTES = 8 * 1024 * 1024
const WRITE_PARALLEL = 4

/** What the record says about the layout: `partBytes` is absent on a one-blob file. */
export interface PartLayout {
  assetId: string
  bytes: number
  partBytes?: number | undefined
}

const partSize = (layout: PartLayout) => layout.partBytes ?? Math.max(layout.bytes, 1)
const partKey = (assetId: string, n: number) => (n === 0 ? assetKeys.asset(assetId) : assetKeys.part(assetId, n))

/** Every key of a stored file's parts after the first. */
export function laterPartKeys(layout: PartLayout): string[] {
  const count = Math.ceil(layout.bytes / partSize(layout))
  return Array.from({ length: Math.max(0, count - 1) }, (_, i) => assetKeys.part(layout.assetId, i + 1))
}

/**
 * Writes a file: the later parts first, then `asset/<id>` with the first part
 * and `metadata` (which must carry `partBytes` when there is more than one part).
 */
export async function writeParts(assets: AssetPort, layout: PartLayout, data: Uint8Array, metadata: Record<string, unknown>) {
  const size = partSize(layout)
  const later = laterPartKeys(layout)
  for (let i = 0; i < later.length; i += WRITE_PARALLEL) {
    await Promise.all(
      later.slice(i, i + WRITE_PARALLEL).map((key, j) => {
        const n = i + j + 1
        return assets.put(key, data.subarray(n * size, (n + 1) * size), {})
      }),
    )
  }
  await assets.put(assetKeys.asset(layout.assetId), data.subarray(0, size), metadata)
}

/**
 * The bytes `range` of a stored file, read part by part as the consumer pulls:
 * only the parts it overlaps are opened, and only one at a time. A part that
 * has gone (the file was deleted meanwhile) errors the stream.
 */
export function readRange(assets: AssetPort, layout: PartLayout, range: ByteRange): ReadableStream<Uint8Array> {
  const size = partSize(layout)
  const last = Math.floor(range.end / size)
  let n = Math.floor(range.start / size)
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null
  /** Position in the file of the next byte `reader` gives. */
  let position = 0

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        if (!reader) {
          if (n > last) return controller.close()
          const opened = await assets.stream(partKey(layout.assetId, n))
          if (!opened) throw new Error(`part ${n} of ${layout.assetId} is missing`)
          reader = opened.body.getReader()
          position = n * size
          n++
        }
        const next = await reader.read()
        if (next.done) {
          reader = null
          continue
        }
        const chunk = next.value
        const from = Math.max(range.start - position, 0)
        const to = Math.min(range.end + 1 - position, chunk.byteLength)
        position += chunk.byteLength
        if (position > range.end) {
          // The range ends in this chunk: stop reading.
          await reader.cancel().catch(() => {})
          reader = null
          n = last + 1
        }
        if (to > from) {
          controller.enqueue(from === 0 && to === chunk.byteLength ? chunk : chunk.subarray(from, to))
          return
        }
      }
    },
    async cancel(reason) {
      await reader?.cancel(reason).catch(() => {})
    },
  })
}
