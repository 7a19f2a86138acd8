/**
 * An error answer of the API: `{ error: { code, message }, ...extra }`.
 * `body` is the whole parsed body (e.g. `issues` for a 400, `holder` for a 409).
 */
export class ApiError extends Error {
  override name = 'ApiError'
  /** HTTP status. */
  readonly status: number
  /** Stable snake_case code, e.g. `invalid_request`, `not_found`, `job_finished`. */
  readonly code: string
  /** The parsed response body, or the raw text when it was not JSON. */
  readonly body: unknown
  /** Seconds from the `Retry-After` header, when the server sent one. */
  readonly retryAfter: number | null

  constructor(status: number, code: string, message: string, body: unknown = null, retryAfter: number | null = null) {
    super(message)
    this.status = status
    this.code = code
    this.body = body
    this.retryAfter = retryAfter
  }

  /** Builds the error from a non-2xx response (reads its body). */
  static async from(res: Response, now = Date.now()): Promise<ApiError> {
    const text = await res.text().catch(() => '')
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {
      // not JSON (a proxy's HTML page): keep the text
    }
    const envelope = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error
    const code = typeof envelope?.code === 'string' ? envelope.code : `http_${res.status}`
    const message =
      typeof envelope?.message === 'string' ? envelope.message : `The server answered ${res.status} ${res.statusText}`.trim()
    const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), now)
    return new ApiError(res.status, code, message, body, retryAfterMs === null ? null : retryAfterMs / 1000)
  }
}

/** `Retry-After` in milliseconds: delta-seconds or an HTTP date; null if absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null || value.trim() === '') return null
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000
  const date = Date.parse(value)
  return Number.isNaN(date) ? null : Math.max(0, date - now)
}
