/**
 * Splits a failure into the two forms the product keeps: `error` (safe for
 * any client) and `errorInternal` (full text for operators). Done once,
 * where the failure is recorded, so no surface can forget.
 */
import { JobFailure, RetryableError } from './errors.ts'
import type { PublicError } from './types.ts'

export const GENERIC_FAILURE: PublicError = {
  code: 'internal_error',
  message: 'The job failed because of an internal error. Operators can see the details.',
}

const MAX_PUBLIC_MESSAGE = 300
const MAX_INTERNAL = 4000

// What must never reach a client even inside a handler's own message.
const SCRUBBERS: [RegExp, string][] = [
  [/\b[a-z][a-z0-9+.-]*:\/\/[^\s'"<>]+/gi, '[url]'], // URLs (hosts, credentials, query keys)
  [/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b/g, '[address]'], // IPv4 addresses
  [/\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|dev|app|internal|local|cloud|aws|svc)\b(?::\d+)?/gi, '[host]'],
  [/(?:\/[\w.@-]+){2,}\/?/g, '[path]'], // unix paths
  [/[A-Za-z]:\\[^\s]+/g, '[path]'], // windows paths
  [/\b(?:bearer|token|key|secret|password|authorization)\b\s*[:=]?\s*\S+/gi, '[redacted]'],
  [/\b[A-Za-z0-9_-]{32,}\b/g, '[redacted]'], // long opaque strings: keys, tokens
  [/\n\s*at .*/g, ''], // stack frames
]

export function scrub(text: string): string {
  let out = text
  for (const [pattern, replacement] of SCRUBBERS) out = out.replace(pattern, replacement)
  out = out.replace(/\s+/g, ' ').trim()
  return out.length > MAX_PUBLIC_MESSAGE ? `${out.slice(0, MAX_PUBLIC_MESSAGE - 1)}…` : out
}

export interface SplitError {
  error: PublicError
  errorInternal: string
}

/** The public and internal forms of a thrown value. */
export function splitError(thrown: unknown): SplitError {
  const internal = describe(thrown).slice(0, MAX_INTERNAL)
  if (thrown instanceof JobFailure || thrown instanceof RetryableError) {
    const message = scrub(thrown.message)
    return { error: { code: safeCode(thrown.code), message: message || GENERIC_FAILURE.message }, errorInternal: internal }
  }
  return { error: GENERIC_FAILURE, errorInternal: internal }
}

/** A public error the system itself decided on (reaper, cancel), with operator detail. */
export function systemError(code: string, message: string, internal: string): SplitError {
  return { error: { code, message }, errorInternal: internal }
}

function safeCode(code: string) {
  return /^[a-z][a-z0-9_]{0,63}$/.test(code) ? code : 'job_failed'
}

function describe(thrown: unknown): string {
  if (thrown instanceof Error) {
    const cause = thrown.cause === undefined ? '' : `\ncaused by: ${describe(thrown.cause)}`
    return `${thrown.stack ?? `${thrown.name}: ${thrown.message}`}${cause}`
  }
  try {
    return `non-error thrown: ${JSON.stringify(thrown)}`
  } catch {
    return `non-error thrown: ${String(thrown)}`
  }
}
