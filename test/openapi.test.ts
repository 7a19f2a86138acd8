/**
 * The OpenAPI document and the kind list: served as generated, covering every
 * function with a public path, and the checker every HTTP suite runs its
 * answers through catches a body, status, header or route the document does
 * not describe.
 */
import { Ajv2020 } from 'ajv/dist/2020.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openApiDocument, openApiPath } from '../lib/http/openapi.ts'
import { apiRoutes, undocumentedPaths } from '../lib/http/routes/index.ts'
import { jobKinds } from '../netlify/app.ts'
import { testApi } from './support/api.ts'
import { discoverRoutes } from './support/functions.ts'
import { slow } from './support/kinds.ts'
import { type Answer, contractChecker } from './support/openapi-check.ts'

const api = testApi({ kinds: [slow], accounts: { 'acct-a': 100 } })
beforeAll(() => api.start())
afterAll(() => api.stop())

const isoNow = new Date().toISOString()
const job = {
  jobId: 'job_abc',
  kind: 'slow',
  status: 'running',
  cancelRequested: false,
  progress: { message: 'step 1', percent: 10 },
  error: null,
  attempt: 1,
  maxAttempts: 1,
  nextAttemptAt: null,
  createdAt: isoNow,
  startedAt: isoNow,
  updatedAt: isoNow,
  finishedAt: null,
  lastSeq: 2,
  statusUrl: '/api/jobs/job_abc',
  eventsUrl: '/api/jobs/job_abc/events',
  sourceTaskId: null,
  clientJobId: null,
  creditCharged: 0,
  assets: [],
}
const answer = (over: Partial<Answer> & { json?: unknown }): Answer => ({
  method: 'GET',
  path: '/api/jobs/job_abc',
  status: 200,
  headers: { 'content-type': 'application/json; charset=utf-8', etag: '"x"' },
  body: JSON.stringify(over.json ?? job),
  ...over,
})

describe('the contract checker', () => {
  const checker = contractChecker()

  it('accepts an answer as documented', () => {
    expect(checker.check(answer({}))).toBeNull()
  })

  it('catches a drifted body: a renamed field, a wrong type, an extra field, an unknown status value', () => {
    const { lastSeq: _, ...renamed } = job
    expect(checker.check(answer({ json: { ...renamed, lastSequence: 2 } }))).toMatch(/does not match the document/)
    expect(checker.check(answer({ json: { ...job, progress: { message: 'x', percent: '10' } } }))).toMatch(/does not match/)
    expect(checker.check(answer({ json: { ...job, internal: 'lease-token' } }))).toMatch(/does not match/)
    expect(checker.check(answer({ json: { ...job, status: 'paused' } }))).toMatch(/does not match/)
    expect(checker.check(answer({ json: { ...job, createdAt: 'yesterday' } }))).toMatch(/does not match/)
  })

  it('catches an error code, status, header or route the document does not list', () => {
    const envelope = (code: string) => ({ error: { code, message: 'm' } })
    expect(checker.check(answer({ status: 404, json: envelope('not_found') }))).toBeNull()
    expect(checker.check(answer({ status: 404, json: envelope('gone') }))).toMatch(/does not match/)
    expect(checker.check(answer({ status: 418, json: envelope('teapot') }))).toMatch(/status 418 is not documented/)
    expect(checker.check(answer({ headers: { 'content-type': 'application/json' } }))).toMatch(/required header ETag is missing/)
    expect(checker.check(answer({ path: '/api/jobs/job_abc/retry', method: 'POST' }))).toMatch(/not in the OpenAPI document/)
    expect(checker.check(answer({ method: 'DELETE', status: 200 }))).toMatch(/DELETE \/api\/jobs\/\{id\} is not in the OpenAPI document/)
    expect(checker.check(answer({ method: 'DELETE', status: 405, json: envelope('method_not_allowed') }))).toBeNull()
  })

  it('a suite whose function answers off the document fails when it stops', async () => {
    api.server.contractViolations.push('GET /api/x → 200: made up')
    expect(() => api.server.assertContract()).toThrow(/1 answer\(s\) do not match the OpenAPI document/)
    expect(api.server.contractViolations).toEqual([])
  })
})

describe('GET /api/openapi.json', () => {
  it('serves the generated document without a key, cacheable', async () => {
    const res = await api.call('/api/openapi.json', { key: null })
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('public, max-age=300')
    const document = await res.json()
    expect(document).toEqual(JSON.parse(JSON.stringify(openApiDocument(apiRoutes, jobKinds()))))
    expect(document.openapi).toBe('3.1.0')
    expect(Object.keys(document.components.securitySchemes)).toEqual(['apiKey', 'token', 'tokenQuery', 'admin'])
    const ids = Object.values(document.paths).flatMap((item) => Object.values(item as Record<string, { operationId: string }>).map((op) => op.operationId))
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('describes every function with a public path but those left out with a reason, and nothing else', async () => {
    const routes = (await discoverRoutes()).filter((route) => route.custom && !route.scheduled)
    const served = routes.flatMap((route) => route.paths).filter((path) => !Object.hasOwn(undocumentedPaths, path))
    expect(new Set(served.map(openApiPath))).toEqual(new Set(Object.keys(openApiDocument(apiRoutes, jobKinds()).paths)))
    // Every path left out is one a function serves, with its reason.
    for (const [path, reason] of Object.entries(undocumentedPaths)) {
      expect(routes.some((route) => route.paths.includes(path)), path).toBe(true)
      expect(reason.length, path).toBeGreaterThan(20)
    }
  })

  it('the checker skips only the paths left out: anything else off the document is still caught', () => {
    const checker = contractChecker()
    expect(checker.check(answer({ path: '/api/dev/token', method: 'POST', status: 404, json: { error: { code: 'not_found', message: 'm' } } }))).toBeNull()
    expect(checker.check(answer({ path: '/api/dev/tokens', method: 'POST', status: 404 }))).toMatch(/not in the OpenAPI document/)
  })

  it('every schema in it compiles as JSON Schema 2020-12', () => {
    const ajv = new Ajv2020({ strict: false })
    const schemas: object[] = []
    const walk = (node: unknown, key = '') => {
      if (!node || typeof node !== 'object') return
      if (key === 'schema') schemas.push(node)
      else for (const [k, v] of Object.entries(node)) walk(v, k)
    }
    walk(openApiDocument(apiRoutes, jobKinds()).paths)
    expect(schemas.length).toBeGreaterThan(40)
    for (const schema of schemas) expect(() => ajv.compile(schema)).not.toThrow()
  })

  it('says which routes take a token, which only an API key (403 token_scope), and that a download takes a signed link alone', () => {
    const paths = openApiDocument(apiRoutes, jobKinds()).paths as Record<string, Record<string, any>>
    const schemes = (path: string, method: string) => (paths[path]![method].security as object[]).map((s) => Object.keys(s).join('+'))
    for (const [path, method] of [['/api/jobs', 'post'], ['/api/jobs/{id}', 'get'], ['/api/jobs/{id}/events', 'get'], ['/api/jobs/{id}/cancel', 'post'], ['/api/jobs/{id}/assets', 'get'], ['/api/assets', 'get']] as const) {
      expect(schemes(path, method), `${method} ${path}`).toEqual(['apiKey', 'token', 'tokenQuery'])
    }
    expect(schemes('/api/assets/{id}', 'get')).toEqual(['apiKey', 'token', 'tokenQuery', ''])
    expect(Object.keys(paths['/api/assets/{id}']!.get.responses)).toEqual(expect.arrayContaining(['200', '206', '304', '401', '404', '416']))
    for (const [path, method] of [['/api/account', 'get'], ['/api/tokens', 'post']] as const) {
      expect(schemes(path, method), `${method} ${path}`).toEqual(['apiKey'])
      expect(paths[path]![method].responses['403'].content['application/json'].schema.properties.error.properties.code.enum).toEqual(['token_scope'])
    }
    expect(paths['/api/jobs']!.post.responses['403']).toBeDefined()
    expect(paths['/api/jobs']!.post.responses['202'].content['application/json'].schema.required).toEqual(expect.arrayContaining(['watchToken', 'watchTokenExpiresAt']))
    for (const [path, item] of Object.entries(paths).filter(([p]) => p.startsWith('/api/admin/'))) {
      for (const operation of Object.values(item)) expect(operation.security, path).toEqual([{ admin: [] }])
    }
  })

  it('the submit body lists each kind with its own input schema', () => {
    const submit = openApiDocument(apiRoutes, jobKinds()).paths['/api/jobs']!.post as any
    const variants = submit.requestBody.content['application/json'].schema.oneOf as { properties: { kind: { const: string } } }[]
    expect(variants.map((v) => v.properties.kind.const)).toEqual(['summarize', 'render', 'index', 'slow'])
  })
})

describe('GET /api/kinds', () => {
  it('lists every kind, a test kind included, with its input JSON Schema, cost, lock and files, without a key', async () => {
    const res = await api.call('/api/kinds', { key: null })
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toBe('public, max-age=300')
    const { kinds } = await res.json()
    expect(kinds.map((k: { kind: string }) => k.kind)).toEqual(['summarize', 'render', 'index', 'slow'])
    const [summarize, render, index, slowKind] = kinds
    expect(index).toMatchObject({ title: 'Index documents', cost: 2, lock: { by: ['input.vault'] }, makesAssets: true, retry: { maxAttempts: 1 } })
    expect(summarize).toMatchObject({ title: 'Summarize a text', cost: 1, lock: { by: ['input.text'] }, makesAssets: false })
    expect(render).toMatchObject({ cost: 1, lock: { by: ['input.canvas', 'sourceTaskId'] }, makesAssets: true, retry: { maxAttempts: 3, baseMs: 5000, capMs: 60_000 } })
    expect(slowKind).toMatchObject({ title: 'slow', description: null, cost: 0, lock: { by: [] }, example: null, retry: { maxAttempts: 1 } })
    expect(render.input.properties.width).toMatchObject({ type: 'integer', minimum: 1, maximum: 4096, title: 'Width (pixels)' })
  })

  it("each input schema accepts the kind's example and refuses what submit refuses", async () => {
    const { kinds } = await (await api.call('/api/kinds', { key: null })).json()
    const ajv = new Ajv2020({ strict: false })
    for (const kind of kinds.filter((k: { example: unknown }) => k.example)) expect(ajv.validate(kind.input, kind.example), kind.kind).toBe(true)
    const render = ajv.compile(kinds[1].input)
    expect(render({ width: 0, height: 10, maxIterations: 10 })).toBe(false)
    expect(render({ width: 10, height: 10, maxIterations: 10, extra: 1 })).toBe(false)
    const refused = await api.call('/api/jobs', { method: 'POST', json: { kind: 'render', input: { width: 0, height: 10, maxIterations: 10 } } })
    expect(refused.status).toBe(400)
  })

  it('answers 405 to another method', async () => {
    const res = await api.call('/api/kinds', { method: 'POST', key: null, json: {} })
    expect(res.status).toBe(405)
  })
})
