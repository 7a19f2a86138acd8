/**
 * Cross-origin access to the API, for frontends on other origins. Off unless
 * the deploy lists origins (`ALLOWED_ORIGINS`): then a listed origin gets
 * `Access-Control-Allow-Origin` on every answer and on the preflight, and
 * any other origin gets none, so its browser blocks the call.
 *
 * Credentials travel in `Authorization` or `?token=`, never cookies, so no
 * `Access-Control-Allow-Credentials`: a page cannot borrow a user's session.
 */

export interface CorsPolicy {
  /** Exact origins (`https://app.example.com`), or every origin when `any`. */
  origins: ReadonlySet<string>
  any: boolean
}

export class CorsConfigError extends Error {
  override name = 'CorsConfigError'
}

export const SAME_ORIGIN_ONLY: CorsPolicy = { origins: new Set(), any: false }

export const ALLOWED_METHODS = ['GET', 'POST', 'OPTIONS']
export const ALLOWED_HEADERS = ['authorization', 'content-type', 'idempotency-key', 'last-event-id', 'if-none-match', 'range', 'if-range']
export const EXPOSED_HEADERS = ['ETag', 'Retry-After', 'Location', 'Idempotent-Replayed', 'Content-Range', 'Accept-Ranges', 'Content-Disposition']
/** How long a browser may cache a preflight answer. */
const PREFLIGHT_MAX_AGE_SECONDS = 600

/**
 * `ALLOWED_ORIGINS`: a comma list of origins (scheme, host and port as the
 * browser sends them, no path), or `*`. Empty means same-origin only.
 */
export function parseAllowedOrigins(text: string | undefined): CorsPolicy {
  const entries = (text ?? '').split(',').map((entry) => entry.trim()).filter(Boolean)
  if (entries.length === 0) return SAME_ORIGIN_ONLY
  if (entries.includes('*')) return { origins: new Set(), any: true }
  const origins = new Set<string>()
  for (const entry of entries) {
    let url: URL
    try {
      url = new URL(entry)
    } catch {
      throw new CorsConfigError(`ALLOWED_ORIGINS: "${entry}" is not an origin such as https://app.example.com`)
    }
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin !== entry.replace(/\/$/, '')) {
      throw new CorsConfigError(`ALLOWED_ORIGINS: "${entry}" is not an origin (scheme://host[:port], nothing after it)`)
    }
    origins.add(url.origin)
  }
  return { origins, any: false }
}

const allowed = (policy: CorsPolicy, origin: string | null): origin is string =>
  origin !== null && (policy.any || policy.origins.has(origin))

/** The preflight answer: 204 always (OPTIONS is never a 405), with the grants only for an allowed origin. */
export function preflight(req: Request, policy: CorsPolicy): Response {
  const origin = req.headers.get('origin')
  const headers = new Headers({ Vary: 'Origin', 'Cache-Control': 'no-store' })
  if (allowed(policy, origin)) {
    headers.set('Access-Control-Allow-Origin', origin)
    headers.set('Access-Control-Allow-Methods', ALLOWED_METHODS.join(', '))
    headers.set('Access-Control-Allow-Headers', ALLOWED_HEADERS.join(', '))
    headers.set('Access-Control-Max-Age', String(PREFLIGHT_MAX_AGE_SECONDS))
    headers.set('Cache-Control', `max-age=${PREFLIGHT_MAX_AGE_SECONDS}`)
  }
  return new Response(null, { status: 204, headers })
}

/** The answer with `Vary: Origin`, and for an allowed origin the grant and the headers a page may read. */
export function withCorsHeaders(req: Request, policy: CorsPolicy, response: Response): Response {
  const headers = new Headers(response.headers)
  const vary = headers.get('vary')
  if (!vary?.split(',').some((part) => part.trim().toLowerCase() === 'origin')) headers.set('Vary', vary ? `${vary}, Origin` : 'Origin')
  const origin = req.headers.get('origin')
  if (allowed(policy, origin)) {
    headers.set('Access-Control-Allow-Origin', origin)
    headers.set('Access-Control-Expose-Headers', EXPOSED_HEADERS.join(', '))
  }
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers })
}

/** Runs an /api route behind the policy: answers the preflight itself, and adds the headers to whatever the route answers. */
export async function withCors(req: Request, policy: CorsPolicy, route: () => Promise<Response>): Promise<Response> {
  if (req.method === 'OPTIONS') return preflight(req, policy)
  return withCorsHeaders(req, policy, await route())
}
