/**
 * Single byte ranges (RFC 9110 §14): `Range: bytes=a-b`, `a-` and `-n`,
 * guarded by `If-Range`. Several ranges in one request are ignored (the whole
 * file, 200), which the RFC allows; a client that wants parts asks for them
 * one at a time. Anything that does not parse is ignored the same way.
 */

/** Inclusive byte positions. */
export interface ByteRange {
  start: number
  end: number
}

export type RangeDecision = { kind: 'full' } | { kind: 'partial'; range: ByteRange } | { kind: 'unsatisfiable' }

const SPEC = /^(\d*)-(\d*)$/
const MAX_HEADER = 200

/**
 * What to send for `header` against a representation of `size` bytes. A
 * satisfiable range longer than `maxBytes` is cut to its first `maxBytes`
 * (Content-Range says what was sent), so no answer passes the platform's
 * response cap: `bytes=0-` on a 500 MB file gets the first part.
 */
export function decideRange(header: string | null, size: number, maxBytes: number): RangeDecision {
  if (header === null || header.length > MAX_HEADER) return { kind: 'full' }
  const match = /^\s*bytes\s*=\s*(.*)$/i.exec(header)
  if (!match) return { kind: 'full' }
  const specs = match[1]!.split(',').map((part) => part.trim()).filter((part) => part !== '')
  if (specs.length !== 1) return { kind: 'full' }
  const spec = SPEC.exec(specs[0]!)
  if (!spec || (spec[1] === '' && spec[2] === '')) return { kind: 'full' }
  let start: number
  let end: number
  if (spec[1] === '') {
    const suffix = Number(spec[2])
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' }
    start = Math.max(0, size - suffix)
    end = size - 1
  } else {
    start = Number(spec[1])
    if (spec[2] !== '' && Number(spec[2]) < start) return { kind: 'full' } // an invalid range-spec: ignored
    if (start >= size) return { kind: 'unsatisfiable' }
    end = spec[2] === '' ? size - 1 : Math.min(Number(spec[2]), size - 1)
  }
  return { kind: 'partial', range: { start, end: Math.min(end, start + maxBytes - 1) } }
}

/**
 * `If-Range`: the range applies only if the validator is our strong ETag;
 * a weak or other ETag, or a date (we send no Last-Modified), means "send it all".
 */
export function ifRangeHolds(ifRange: string | null, etag: string): boolean {
  return ifRange === null || ifRange.trim() === etag
}

export const contentRange = ({ start, end }: ByteRange, size: number) => `bytes ${start}-${end}/${size}`
