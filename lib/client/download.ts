/**
 * Downloading a generated file in parts: a file the server answers in one
 * range is fetched with one request; a bigger one part after part with
 * `Range` and `If-Range`, each answer below Netlify's 20 MB response cap. The
 * bytes are hashed as they arrive and checked against the ETag (the file's
 * sha256), so a file that arrives changed or spliced is refused.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { ApiError } from './errors.ts'

/** 8 MiB: one stored part of the file per request. */
export const DOWNLOAD_PART_BYTES = 8 * 1024 * 1024

export interface DownloadOptions {
  signal?: AbortSignal
  /** Bytes asked for per request. Default {@link DOWNLOAD_PART_BYTES}; at most 16 MiB is answered. */
  partBytes?: number
  /** Called after each chunk of bytes: what has arrived, of how many (known after the first answer). */
  onProgress?: (progress: { received: number; total: number }) => void
}

/** The bytes that arrived do not hash to the file's sha256, or the file changed between parts. */
export class AssetIntegrityError extends Error {
  override name = 'AssetIntegrityError'
}

/** What the client gives the download: one GET with extra headers, and how to wait before retry `attempt`. */
export interface PartFetcher {
  get(headers: Record<string, string>, signal: AbortSignal | undefined): Promise<Response>
  /** Resolves when retry number `attempt` may start; rejects to give up (with the error given). */
  retry(attempt: number, error: unknown, retryAfterMs: number | null): Promise<void>
  now(): number
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+)$/
const SHA256_ETAG = /^"([0-9a-f]{64})"$/

export async function downloadInParts(fetcher: PartFetcher, options: DownloadOptions = {}): Promise<Blob> {
  const { signal, onProgress } = options
  const partBytes = Math.max(1, Math.floor(options.partBytes ?? DOWNLOAD_PART_BYTES))
  const hash = sha256.create()
  const parts: Uint8Array[] = []
  let received = 0
  let total = -1
  let etag: string | null = null
  let type = ''
  const progress = (n: number, of: number) => onProgress?.({ received: n, total: of })

  for (;;) {
    const start = received
    const end = total < 0 ? partBytes - 1 : Math.min(start + partBytes, total) - 1
    const headers: Record<string, string> = { Accept: '*/*', Range: `bytes=${start}-${end}` }
    if (etag) headers['If-Range'] = etag
    const part = await fetchPart(fetcher, headers, signal, (n, res) => progress(start + n, total >= 0 ? total : contentLength(res)))
    const { res } = part
    if (res.status === 416 && total < 0) {
      // An empty file has no first byte to ask for: take it whole.
      const whole = await fetchPart(fetcher, { Accept: '*/*' }, signal, () => {})
      if (whole.res.status !== 200) throw await ApiError.from(whole.res, fetcher.now())
      return check(whole.chunks, whole.res.headers.get('content-type') ?? '', whole.res.headers.get('etag'))
    }
    if (res.status === 200) {
      if (total >= 0) throw new AssetIntegrityError('The file changed while it was being downloaded (If-Range did not hold).')
      return check(part.chunks, res.headers.get('content-type') ?? '', res.headers.get('etag'))
    }
    if (res.status !== 206) throw await ApiError.from(res, fetcher.now())
    const range = CONTENT_RANGE.exec(res.headers.get('content-range') ?? '')
    if (!range || Number(range[1]) !== start || Number(range[2]) < start || (total >= 0 && Number(range[3]) !== total)) {
      throw new AssetIntegrityError(`The server answered a range that was not asked for (${res.headers.get('content-range')}).`)
    }
    if (total < 0) {
      total = Number(range[3])
      etag = res.headers.get('etag')
      type = res.headers.get('content-type') ?? ''
    }
    const expected = Number(range[2]) - start + 1
    if (part.count !== expected) throw new AssetIntegrityError(`A part ended after ${part.count} of its ${expected} bytes.`)
    for (const chunk of part.chunks) hash.update(chunk)
    parts.push(...part.chunks)
    received += part.count
    if (received >= total) return check(parts, type, etag, true)
  }

  /** The file as a Blob once its bytes hash to the sha256 in `tag` (`hashed`: already fed to `hash` part by part). */
  function check(chunks: Uint8Array[], contentType: string, tag: string | null, hashed = false): Blob {
    if (!hashed) for (const chunk of chunks) hash.update(chunk)
    const want = SHA256_ETAG.exec(tag ?? '')?.[1]
    const got = bytesToHex(hash.digest())
    if (want !== undefined && want !== got) throw new AssetIntegrityError(`The downloaded bytes hash to ${got}, not the file's sha256 ${want}.`)
    return new Blob(chunks as BlobPart[], { type: contentType })
  }
}

/** The file's size as an answer tells it: after the slash of Content-Range, else Content-Length. */
const contentLength = (res: Response) => Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1] ?? res.headers.get('content-length') ?? 0)

/**
 * One request and, for 200 and 206, its whole body. Network errors (also
 * mid-body), 408, 429 and 5xx are retried as the client's backoff says; a
 * part is kept only once all of it arrived, so a retry starts it clean.
 */
async function fetchPart(
  fetcher: PartFetcher,
  headers: Record<string, string>,
  signal: AbortSignal | undefined,
  progress: (n: number, res: Response) => void,
): Promise<{ res: Response; chunks: Uint8Array[]; count: number }> {
  for (let attempt = 0; ; attempt++) {
    let res: Response
    const chunks: Uint8Array[] = []
    let count = 0
    try {
      res = await fetcher.get(headers, signal)
      if (res.status === 200 || res.status === 206) {
        const reader = res.body?.getReader()
        for (let next = await reader?.read(); next && !next.done; next = await reader!.read()) {
          chunks.push(next.value)
          count += next.value.byteLength
          progress(count, res)
        }
        return { res, chunks, count }
      }
    } catch (error) {
      if (signal?.aborted) throw signal.reason
      await fetcher.retry(attempt, error, null)
      continue
    }
    if (res.status !== 408 && res.status !== 429 && res.status < 500) return { res, chunks, count }
    const error = await ApiError.from(res, fetcher.now())
    await fetcher.retry(attempt, error, error.retryAfter === null ? null : error.retryAfter * 1000)
  }
}
