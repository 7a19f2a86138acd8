/**
 * Errors a caller can cause or must be told about. Each carries its HTTP
 * status, a stable snake_case code and a message that is safe to show; the
 * mapping to a response happens once, in `http/http.ts`.
 */
export class ApiError extends Error {
  override name = 'ApiError'
  readonly status: number
  readonly code: string
  readonly extra: Record<string, unknown>
  readonly headers: Record<string, string>

  constructor(
    status: number,
    code: string,
    message: string,
    options: { extra?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(message)
    this.status = status
    this.code = code
    this.extra = options.extra ?? {}
    this.headers = options.headers ?? {}
  }
}

export interface Issue {
  path: string
  message: string
}

export const invalidRequest = (message: string, issues: Issue[] = []) =>
  new ApiError(400, 'invalid_request', message, { extra: issues.length ? { issues } : {} })

export const notFound = (what = 'job') => new ApiError(404, 'not_found', `No such ${what}.`)

export const unauthorized = () =>
  new ApiError(401, 'unauthorized', 'Send a valid API key as "Authorization: Bearer <key>".', {
    headers: { 'WWW-Authenticate': 'Bearer' },
  })

export const methodNotAllowed = (allowed: string[]) =>
  new ApiError(405, 'method_not_allowed', `Use ${allowed.join(' or ')}.`, { headers: { Allow: allowed.join(', ') } })

/**
 * Thrown by a job handler to fail its job with a message the client may see.
 * Anything else a handler throws is shown to clients only as a generic
 * internal error; its text goes to `error_internal` for operators.
 */
export class JobFailure extends Error {
  override name = 'JobFailure'
  readonly code: string
  constructor(code: string, publicMessage: string, options?: { cause?: unknown }) {
    super(publicMessage, options)
    this.code = code
  }
}

/**
 * Thrown by a job handler to ask for another attempt (within its kind's retry
 * policy), e.g. for a rate limit or a backend that is briefly down. The
 * message is public, like JobFailure's. `retryAfterMs` sets the wait instead
 * of the backoff (capped; see jobs/retry-policy.ts). With no attempts left
 * the job fails with this error.
 */
export class RetryableError extends Error {
  override name = 'RetryableError'
  readonly code: string
  readonly retryAfterMs: number | undefined
  constructor(code: string, publicMessage: string, options?: { retryAfterMs?: number; cause?: unknown }) {
    super(publicMessage, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.retryAfterMs = options?.retryAfterMs
  }
}
