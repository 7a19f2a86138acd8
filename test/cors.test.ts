/**
 * CORS on every /api route, through the real function modules: the
 * preflight (204, never 405), the grant for a listed origin only, the
 * headers a page may read, and `ALLOWED_ORIGINS` parsing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ALLOWED_HEADERS, CorsConfigError, parseAllowedOrigins } from '../lib/http/cors.ts'
import { testApi } from './support/api.ts'
import { fillPath } from './support/functions.ts'

const APP = 'http://app.example.test:5173'
const ADMIN = 'test-admin-token-0123456789abcdef'
const api = testApi({ adminToken: ADMIN, accounts: { acme: 10 }, env: { ALLOWED_ORIGINS: `${APP}, https://other.example.test` } })
const { call, contents } = api
beforeAll(() => api.start())
afterAll(() => api.stop())
afterEach(() => {
  process.env.ALLOWED_ORIGINS = `${APP}, https://other.example.test`
})

const apiPaths = () =>
  api.server.routes
    .filter((r) => r.custom && r.paths.some((p) => p.startsWith('/api/')))
    .flatMap((r) => r.paths.map((p) => fillPath(p, Object.fromEntries(r.params.map((name) => [name, name === 'name' ? 'acme' : `job_${'0'.repeat(8)}${'a'.repeat(32)}`])))))

const preflight = (path: string, origin: string, method = 'POST') =>
  call(path, {
    method: 'OPTIONS',
    key: null,
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization, content-type, idempotency-key, last-event-id' },
  })

const varies = (res: Response) => (res.headers.get('vary') ?? '').split(',').map((s) => s.trim().toLowerCase()).includes('origin')

describe('the preflight', () => {
  it('every /api route answers 204 with the grant to a listed origin, and reads or writes nothing', async () => {
    const paths = apiPaths()
    expect(paths.length).toBeGreaterThanOrEqual(9)
    const before = await contents()
    const ops = { ...api.blobs.ops }
    for (const path of paths) {
      const res = await preflight(path, APP)
      expect(res.status, path).toBe(204)
      expect(res.headers.get('access-control-allow-origin'), path).toBe(APP)
      expect(res.headers.get('access-control-allow-methods')?.split(/,\s*/), path).toEqual(expect.arrayContaining(['GET', 'POST']))
      const allowed = res.headers.get('access-control-allow-headers')?.split(/,\s*/) ?? []
      expect(allowed, path).toEqual(expect.arrayContaining(['authorization', 'content-type', 'idempotency-key', 'last-event-id']))
      expect(res.headers.get('access-control-allow-credentials'), path).toBeNull()
      expect(varies(res), path).toBe(true)
    }
    expect(api.blobs.ops).toEqual(ops)
    expect(await contents()).toEqual(before)
  })

  it('a origin not listed, or none, gets 204 without any grant (the browser blocks the call)', async () => {
    for (const path of apiPaths()) {
      for (const origin of ['http://evil.example.test', `${APP}/`, 'http://app.example.test', 'null', APP.toUpperCase()]) {
        const res = await preflight(path, origin)
        expect(res.status, `${path} ${origin}`).toBe(204)
        expect(res.headers.get('access-control-allow-origin'), `${path} ${origin}`).toBeNull()
        expect(res.headers.get('access-control-allow-methods')).toBeNull()
        expect(varies(res)).toBe(true)
      }
      const bare = await call(path, { method: 'OPTIONS', key: null })
      expect(bare.status, path).toBe(204)
    }
  })
})

describe('answers to a listed origin', () => {
  it('carry the grant and expose ETag, Retry-After, Location and Idempotent-Replayed, on success and on errors', async () => {
    const headers = { origin: APP, 'idempotency-key': 'cors-1' }
    const submitted = await call('/api/jobs', { method: 'POST', headers, json: { kind: 'summarize', input: { text: 'One. Two. Three.' } } })
    expect(submitted.status).toBe(202)
    const replay = await call('/api/jobs', { method: 'POST', headers, json: { kind: 'summarize', input: { text: 'One. Two. Three.' } } })
    expect(replay.status).toBe(200)
    const { jobId } = await submitted.json()
    await api.idle()
    const status = await call(`/api/jobs/${jobId}`, { headers: { origin: APP } })
    const unauthorized = await call(`/api/jobs/${jobId}`, { key: 'djk_acme.nonsense', headers: { origin: APP } })
    const wrongMethod = await call('/api/jobs', { method: 'PUT', headers: { origin: APP } })
    expect([submitted.status, replay.status, status.status, unauthorized.status, wrongMethod.status]).toEqual([202, 200, 200, 401, 405])
    for (const res of [submitted, replay, status, unauthorized, wrongMethod]) {
      expect(res.headers.get('access-control-allow-origin')).toBe(APP)
      expect(res.headers.get('access-control-expose-headers')?.split(/,\s*/)).toEqual(
        expect.arrayContaining(['ETag', 'Retry-After', 'Location', 'Idempotent-Replayed']),
      )
      expect(varies(res)).toBe(true)
    }
    expect(status.headers.get('etag')).toMatch(/^"/)
    expect(replay.headers.get('idempotent-replayed')).toBe('true')
  })

  it('a origin not listed gets the answer without a grant; with ALLOWED_ORIGINS empty no origin gets one', async () => {
    const res = await call('/api/account', { headers: { origin: 'http://evil.example.test' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('access-control-allow-origin')).toBeNull()
    expect(varies(res)).toBe(true)
    process.env.ALLOWED_ORIGINS = ''
    for (const origin of [APP, 'http://evil.example.test']) {
      const answer = await call('/api/account', { headers: { origin } })
      expect(answer.headers.get('access-control-allow-origin')).toBeNull()
      const pre = await preflight('/api/jobs', origin)
      expect(pre.status).toBe(204)
      expect(pre.headers.get('access-control-allow-origin')).toBeNull()
    }
  })

  it('ALLOWED_ORIGINS=* grants any origin', async () => {
    process.env.ALLOWED_ORIGINS = '*'
    const res = await preflight('/api/jobs', 'https://anywhere.example.test')
    expect(res.headers.get('access-control-allow-origin')).toBe('https://anywhere.example.test')
  })

  it('a malformed ALLOWED_ORIGINS answers 500 misconfigured and writes nothing', async () => {
    const before = await contents()
    process.env.ALLOWED_ORIGINS = 'app.example.test'
    const res = await call('/api/jobs', { method: 'POST', headers: { origin: APP }, json: { kind: 'summarize', input: { text: 'x' } } })
    expect(res.status).toBe(500)
    expect((await res.json()).error.code).toBe('misconfigured')
    expect(res.headers.get('access-control-allow-origin')).toBeNull()
    expect(await contents()).toEqual(before)
  })
})

describe('parseAllowedOrigins', () => {
  it('takes a comma list of origins, * or nothing', () => {
    expect(parseAllowedOrigins(undefined)).toEqual({ origins: new Set(), any: false })
    expect(parseAllowedOrigins(' , ')).toEqual({ origins: new Set(), any: false })
    expect(parseAllowedOrigins('https://a.example, http://localhost:3000/')).toEqual({ origins: new Set(['https://a.example', 'http://localhost:3000']), any: false })
    expect(parseAllowedOrigins('https://a.example,*').any).toBe(true)
    for (const bad of ['a.example', 'https://a.example/app', 'ftp://a.example', 'https://a.example?x=1', 'https://user@a.example']) {
      expect(() => parseAllowedOrigins(bad), bad).toThrow(CorsConfigError)
    }
    expect(ALLOWED_HEADERS).toEqual(expect.arrayContaining(['authorization', 'content-type', 'idempotency-key', 'last-event-id']))
  })
})
