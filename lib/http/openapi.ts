/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the zod schemas
 * the code validates requests with and types its answers by. Each route is
 * described once, with `defineRoute`, in `routes/`; this module turns the
 * list into the document served at `GET /api/openapi.json`. The test suite
 * checks every response it sees against that document.
 */
import { z } from 'zod'
import type { KindRegistry } from '../kinds/define.ts'

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

/**
 * Who may call a route: an API key only (a token gets 403 `token_scope`), an
 * API key or a browser token (`caller`: in the header, or a token as
 * `?token=`), the operator token, or anyone.
 */
export type Auth = 'apiKey' | 'caller' | 'admin' | 'none'

export interface HeaderDoc {
  description: string
  /** Always sent (response) or needed (request). */
  required?: boolean
  schema?: z.ZodType
}

export interface ResponseDoc {
  description: string
  /** A JSON body. Absent with `errors`: the error envelope. Absent with neither: no body. */
  body?: z.ZodType
  /** The error codes this status answers with; the body is the error envelope. */
  errors?: string[]
  /** Fields an error answer carries beside `error` (e.g. `holder`), each optional unless it is always there. */
  extra?: z.ZodRawShape
  /** A body that is not JSON (a download): its media type. */
  media?: string
  headers?: Record<string, HeaderDoc>
}

export interface ApiRoute {
  method: Method
  /** As in the function's `config.path`: `/api/jobs/:id`. */
  path: string
  operationId: string
  summary: string
  description?: string
  tags: string[]
  auth: Auth
  /** Path parameters: name → description. */
  params?: Record<string, string>
  query?: z.ZodObject
  headers?: Record<string, HeaderDoc>
  /** The JSON request body; a function gets this deploy's job kinds. */
  body?: z.ZodType | ((kinds: KindRegistry) => z.ZodType)
  /** Every status the route answers with. 401, 500 and 503 are added from `auth`. */
  responses: Record<number, ResponseDoc>
  /** Reads storage (may answer 503 `storage_unavailable`). Default: when `auth` is not `none`. */
  storage?: boolean
  /** Also answers with no credential at all (a signed asset link in the query). */
  anonymous?: boolean
}

/** Identity, for types: `defineRoute({ ... })` in a routes file. */
export const defineRoute = (route: ApiRoute): ApiRoute => route

export const IssueSchema = z.strictObject({ path: z.string(), message: z.string() })

/** The one error shape every route answers with, for a given set of codes. */
export function errorEnvelope(codes: string[], extra: z.ZodRawShape = {}) {
  const code = codes.length > 0 ? z.enum(codes as [string, ...string[]]) : z.string()
  return z.strictObject({ error: z.strictObject({ code, message: z.string() }), ...extra })
}

export const RETRY_AFTER: HeaderDoc = { description: 'Seconds to wait before asking again.', schema: z.string().regex(/^\d+$/) }
const BEARER: HeaderDoc = { description: 'Bearer: an API key or a token is needed.', required: true }

const UNAUTHORIZED: Record<Exclude<Auth, 'none'>, string> = {
  apiKey: 'No, unknown or revoked API key, or an expired, tampered or revoked token.',
  caller: 'No credential, an unknown or revoked API key, or an expired, tampered or revoked token.',
  admin: 'No or wrong operator token (ADMIN_TOKEN).',
}

/** Which security schemes a route accepts (any one of them). */
const SECURITY: Record<Auth, Record<string, never[]>[]> = {
  apiKey: [{ apiKey: [] }],
  caller: [{ apiKey: [] }, { token: [] }, { tokenQuery: [] }],
  admin: [{ admin: [] }],
  none: [],
}

/** Answers every route may give, besides its own. */
function commonResponses(route: ApiRoute): Record<number, ResponseDoc> {
  const storage = route.storage ?? route.auth !== 'none'
  const out: Record<number, ResponseDoc> = {}
  if (route.auth !== 'none') {
    out[401] = { description: UNAUTHORIZED[route.auth], errors: ['unauthorized'], headers: { 'WWW-Authenticate': BEARER } }
  }
  if (route.auth === 'apiKey') {
    out[403] = { description: 'A valid token, where only an API key will do (from your backend).', errors: ['token_scope'] }
  }
  out[500] = {
    description: 'Not the caller’s fault: the deploy is misconfigured, a stored record is unreadable, or an unexpected failure (details only in the log).',
    errors: ['internal_error', 'misconfigured', 'record_unreadable'],
  }
  if (storage) {
    out[503] = { description: 'Storage is briefly unavailable.', errors: ['storage_unavailable'], headers: { 'Retry-After': RETRY_AFTER } }
  }
  return out
}

/** The responses of a route as documented, its own and the common ones. */
export const routeResponses = (route: ApiRoute) => ({ ...commonResponses(route), ...route.responses })

/** OpenAPI's path form: `/api/jobs/{id}`. */
export const openApiPath = (path: string) => path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}')

type JsonSchema = Record<string, unknown>

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
    // `format: date-time` says it; zod's long equivalent pattern would repeat at every timestamp.
    override: ({ jsonSchema }) => {
      if (jsonSchema.format === 'date-time') delete jsonSchema.pattern
    },
  }) as JsonSchema
  return rest
}

function headerObjects(headers: Record<string, HeaderDoc>) {
  return Object.fromEntries(
    Object.entries(headers).map(([name, doc]) => [
      name,
      { description: doc.description, required: doc.required ?? false, schema: doc.schema ? jsonSchema(doc.schema, 'output') : { type: 'string' } },
    ]),
  )
}

function responseObject(doc: ResponseDoc) {
  const body = doc.errors ? errorEnvelope(doc.errors, doc.extra) : doc.body
  return {
    description: doc.description,
    ...(doc.headers ? { headers: headerObjects(doc.headers) } : {}),
    ...(body
      ? { content: { 'application/json': { schema: jsonSchema(body, 'output') } } }
      : doc.media
        ? { content: { [doc.media]: { schema: { type: 'string', contentMediaType: doc.media } } } }
        : {}),
  }
}

function operation(route: ApiRoute, kinds: KindRegistry) {
  const parameters = [
    ...Object.entries(route.params ?? {}).map(([name, description]) => ({ name, in: 'path', required: true, description, schema: { type: 'string' } })),
    ...Object.entries(route.query?.shape ?? {}).map(([name, field]) => {
      const schema = jsonSchema(field as z.ZodType, 'input')
      const { description, ...rest } = schema
      return { name, in: 'query', required: !(field as z.ZodType).safeParse(undefined).success, ...(description ? { description } : {}), schema: rest }
    }),
    ...Object.entries(route.headers ?? {}).map(([name, doc]) => ({
      name,
      in: 'header',
      required: doc.required ?? false,
      description: doc.description,
      schema: doc.schema ? jsonSchema(doc.schema, 'input') : { type: 'string' },
    })),
  ]
  const body = typeof route.body === 'function' ? route.body(kinds) : route.body
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: route.tags,
    security: [...SECURITY[route.auth], ...(route.anonymous && route.auth !== 'none' ? [{}] : [])],
    ...(parameters.length ? { parameters } : {}),
    ...(body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(body, 'input') } } } } : {}),
    responses: Object.fromEntries(
      Object.entries(routeResponses(route))
        .sort(([a], [b]) => Number(a) - Number(b))
        .map(([status, doc]) => [status, responseObject(doc)]),
    ),
  }
}

export const OPENAPI_INFO = {
  title: 'Durable jobs',
  version: '0.1.0',
  description:
    'Long-running jobs on Netlify Functions with Netlify Blobs as the only state: submit a job, follow its event feed or stream, read its status and files. Errors are always `{ "error": { "code", "message" } }` plus the fields named per answer.\n\n' +
    'Credentials: an API key (`djk_…`, on your backend) or a short-lived browser token (`djt_…`, from the submit answer or `POST /api/tokens`), as `Authorization: Bearer …`; a token also as `?token=` for `EventSource` and `<img src>`. A job or file outside a token’s scope answers 404 like one that does not exist.\n\n' +
    'CORS: every `/api` route answers the preflight `OPTIONS` with 204 and no body (never 405); with `ALLOWED_ORIGINS` set, a listed origin gets `Access-Control-Allow-Origin` on the preflight and on every answer. The preflights are not listed per route below.',
}

/** The whole document for these routes and this deploy's job kinds. */
export function openApiDocument(routes: readonly ApiRoute[], kinds: KindRegistry) {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const route of routes) {
    const item = (paths[openApiPath(route.path)] ??= {})
    const method = route.method.toLowerCase()
    if (item[method]) throw new Error(`${route.method} ${route.path} is described twice`)
    item[method] = operation(route, kinds)
  }
  return {
    openapi: '3.1.0',
    info: OPENAPI_INFO,
    servers: [{ url: '/' }],
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'An API key of the account: `Authorization: Bearer <key>`.' },
        token: { type: 'http', scheme: 'bearer', description: 'A browser token (`djt_…`): `Authorization: Bearer <token>`. It covers only its scope (one job, a source task, or submitting some kinds) and actions.' },
        tokenQuery: { type: 'apiKey', in: 'query', name: 'token', description: 'A browser token as `?token=`, for what cannot send headers (`EventSource`, `<img src>`). Never an API key; the header wins when both are sent.' },
        admin: { type: 'http', scheme: 'bearer', description: 'The operator token (`ADMIN_TOKEN`): `Authorization: Bearer <token>`.' },
      },
    },
  }
}

export type OpenApiDocument = ReturnType<typeof openApiDocument>
