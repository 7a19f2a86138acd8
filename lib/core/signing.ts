/**
 * Function URLs are public, so the submit function signs its call to the
 * worker: HMAC-SHA256 over "<timestamp>.<body>" with a secret from the
 * environment. The window must outlast Netlify's background retries, which
 * resend the same request after 1 and then 3 minutes; a replay inside it is
 * harmless because a job can be claimed only once.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'

export const SIGNATURE_HEADER = 'x-jobs-signature'
export const TIMESTAMP_HEADER = 'x-jobs-timestamp'
export const SIGNATURE_WINDOW_MS = 5 * 60_000
export const MIN_SECRET_LENGTH = 32

// Over the bytes as sent: decoding first would let a caller add a byte-order
// mark or invalid UTF-8 that the decoder drops or replaces, and still match.
const hmac = (secret: string, timestamp: string, body: string | Uint8Array) =>
  createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')

export function signWorkerRequest(secret: string, body: string | Uint8Array, now: number): Record<string, string> {
  const timestamp = String(now)
  return { [TIMESTAMP_HEADER]: timestamp, [SIGNATURE_HEADER]: `v1=${hmac(secret, timestamp, body)}` }
}

export type SignatureCheck = { valid: true } | { valid: false; reason: 'missing' | 'expired' | 'mismatch' }

export function verifyWorkerRequest(secret: string, body: string | Uint8Array, headers: Headers, now: number): SignatureCheck {
  const timestamp = headers.get(TIMESTAMP_HEADER)
  const signature = headers.get(SIGNATURE_HEADER)
  if (!timestamp || !signature || !/^\d{1,15}$/.test(timestamp)) return { valid: false, reason: 'missing' }
  const age = now - Number(timestamp)
  if (age > SIGNATURE_WINDOW_MS || age < -30_000) return { valid: false, reason: 'expired' }
  const expected = Buffer.from(`v1=${hmac(secret, timestamp, body)}`)
  const given = Buffer.from(signature)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { valid: false, reason: 'mismatch' }
  return { valid: true }
}

/**
 * A key for one purpose (browser tokens, asset links, ...) derived from the
 * signing secret, so a deploy needs one secret and a signature made for one
 * purpose never verifies for another.
 */
export function purposeKey(secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, '', `durable-jobs/${purpose}`, 32))
}
