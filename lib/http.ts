/**
 * The HTTP edge of the domain: JSON responses, the error envelope, body
 * parsing. Every error becomes a response here and only here.
 */
import { ApiError, invalidRequest, methodNotAllowed } from './errors.ts'
import type { Logger } from './deps.ts'
import { CorruptRecordError } from './records.ts'
import { UnsafeKeyError } from './storage/keys.ts'
import { StorageUnavailableError } from './storage/port.ts'

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers },
  })
}

export function errorResponse(error: ApiError): Response {
  return json({ error: { code: error.code, message: error.message }, ...error.extra }, error.status, error.headers)
}

/**
 * Runs a route and turns what it throws into the error envelope. Unknown
 * failures are logged with detail and answered with a generic 500 (or 503
 * when storage is down); their text never reaches the caller.
 */
export async function respond(log: Logger, route: () => Promise<Response>): Promise<Response> {
  try {
    return await route()
  } catch (error) {
    if (error instanceof ApiError) return errorResponse(error)
    if (error instanceof UnsafeKeyError) return errorResponse(invalidRequest(error.message))
    if (error instanceof StorageUnavailableError) {
      log.error('storage unavailable', { error: describe(error) })
      return errorResponse(
        new ApiError(503, 'storage_unavailable', 'Storage is briefly unavailable. Try again shortly.', {
          headers: { 'Retry-After': '2' },
        }),
      )
    }
    if (error instanceof CorruptRecordError) {
      // Not the caller's fault and not transient: say so, and name the record to operators only.
      log.error('record unreadable', { record: error.key })
      return errorResponse(new ApiError(500, 'record_unreadable', 'A stored record could not be read. Operators have been told; retrying will not help.'))
    }
    log.error('unhandled error', { error: describe(error) })
    return errorResponse(new ApiError(500, 'internal_error', 'Something went wrong on our side.'))
  }
}

export function allowMethods(req: Request, allowed: string[]) {
  if (!allowed.includes(req.method)) throw methodNotAllowed(allowed)
}

/** Reads a JSON body within `maxBytes`: 415 if not JSON, 413 if too big, 400 if malformed. */
export async function readJsonBody(req: Request, maxBytes: number): Promise<unknown> {
  const type = (req.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json' && !type.endsWith('+json')) {
    throw new ApiError(415, 'unsupported_media_type', 'Send the body as application/json.')
  }
  const declared = Number(req.headers.get('content-length') ?? NaN)
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes)
  const text = await readLimited(req, maxBytes)
  try {
    return JSON.parse(text)
  } catch {
    throw invalidRequest('The body is not valid JSON.', [{ path: '(body)', message: 'malformed JSON' }])
  }
}

async function readLimited(req: Request, maxBytes: number): Promise<string> {
  if (!req.body) return ''
  const reader = req.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel().catch(() => {})
      throw tooLarge(maxBytes)
    }
    chunks.push(value)
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks))
  } catch {
    throw invalidRequest('The body is not valid UTF-8.')
  }
}

const tooLarge = (maxBytes: number) =>
  new ApiError(413, 'payload_too_large', `The body is larger than ${maxBytes} bytes.`, { extra: { maxBytes } })

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  return `${error.stack ?? error.message}${error.cause ? `\ncaused by: ${describe(error.cause)}` : ''}`
}
