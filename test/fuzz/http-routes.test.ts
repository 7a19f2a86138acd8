/**
 * Property-based fuzzing of every HTTP route, through the real function
 * modules served over real HTTP on a real local Blobs server. Routes are
 * found by reading `netlify/functions` (see test/support/functions.ts), so a route added
 * later is fuzzed too. For every generated request:
 *
 * - never a 5xx (nor any status outside 2xx / 304 / 4xx);
 * - a 4xx from an /api route is the error envelope `{ error: { code, message } }`
 *   (401 with `WWW-Authenticate: Bearer`, 405 with `Allow`);
 * - a 4xx writes nothing: the Blobs server saw no set/delete, or (for the few
 *   4xx that must try a conditional write to learn they lost, e.g. 409
 *   resource_locked) the store's keys and ETags are exactly as before;
 * - no response carries a secret (signing secret, admin token, API keys).
 *
 * The background worker is fuzzed by calling its default export with forged,
 * tampered, expired and replayed signatures: 401 and no storage operation at
 * all, unless validly signed (then no write, since every job it names is
 * finished or does not exist).
 *
 * A last property drives the submit route into its conflicts (409
 * resource_locked, 402, 422/200 with a reused Idempotency-Key) and checks
 * the store is left exactly as it was.
 *
 * Runs: FUZZ_RUNS per route (default: 5000 requests shared among the routes,
 * about 45-60 s on 2 cores), FUZZ_SEED to replay a failure. The last test
 * prints a summary line: requests, routes, 5xx, writes on 4xx, statuses.
 */
import { createHmac, randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createApiKey } from '../../lib/accounts/api-keys.ts'
import { systemClock } from '../../lib/core/clock.ts'
import { createAccount } from '../../lib/credits/index.ts'
import { DEFAULT_SETTINGS } from '../../lib/core/deps.ts'
import { SIGNATURE_HEADER, SIGNATURE_WINDOW_MS, TIMESTAMP_HEADER, signWorkerRequest } from '../../lib/core/signing.ts'
import { STORE_NAME } from '../../netlify/app.ts'
import { signToken, tokenKey } from '../../lib/tokens/token.ts'
import {
  METHODS,
  assetLinkQuery,
  authorization,
  badUtf8,
  contentType,
  idempotencyKey,
  ifRangeHeader,
  jsonText,
  pathId,
  percentEncode,
  queryString,
  rangeHeader,
  requestBody,
  tokenCredential,
  weirdString,
  wireHeader,
} from './arbitraries.ts'
import { type Env, type RawRequest, type Route, contextFor, discoverRoutes, fillPath, sameSnapshot, send, startEnv, unknownJobId } from './harness.ts'

const SECRET = `fuzz-signing-secret-${randomBytes(24).toString('hex')}`
const ADMIN = `fuzz-admin-token-${randomBytes(16).toString('hex')}`
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined

const routes = await discoverRoutes()
/** Routes reachable over HTTP that a client may call: custom paths and plain functions, not background or scheduled ones. */
const httpRoutes = routes.filter((r) => !r.background && !r.scheduled)
const workerRoutes = routes.filter((r) => r.background)
/** Runs per route: about 5000 requests in all by default (~60 s on 2 cores), whatever the number of routes. */
const RUNS = Number(process.env.FUZZ_RUNS) > 0 ? Number(process.env.FUZZ_RUNS) : Math.max(200, Math.round(5000 / (httpRoutes.length + workerRoutes.length)))
const CONFLICT_RUNS = Math.max(30, Math.round(RUNS / 5))

let env: Env
let keyA: string
let keyB: string
let keyPoor: string
const ids = { own: [] as string[], other: [] as string[], prefixes: ['job', 'asset'] }
/** Browser tokens of every scope, good and bad (watch tokens, minted ones, expired, revoked). */
const tokens: string[] = []
/** Source task ids the fixtures used (query values worth trying). */
const taskIds = ['task-a', 'task-b']
/** Queries of the signed asset links the fixtures were given, and their files' ETags. */
const linkQueries: string[] = []
const assetEtags: string[] = []
const assetFiles: { assetId: string; query: string }[] = []
/** Methods each route answers (from the `Allow` of a 405, or its config). */
const methodsOf = new Map<string, string[]>()
/** A validly signed worker request captured at setup, for replays. */
let captured: { body: string; headers: Record<string, string> }
let secrets: string[]
const logLines: string[] = []

const stats = {
  requests: 0,
  byRoute: new Map<string, number>(),
  byStatus: new Map<number, number>(),
  fiveXX: 0,
  writesOn4xx: 0,
  /** 4xx answers that sent a write but left the store unchanged (a conditional write that lost, or a create undone). */
  refusedWritesOn4xx: new Map<string, number>(),
  ok2xx: 0,
  unrouted: 0,
  requestMs: 0,
}
const bump = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1)

beforeAll(async () => {
  process.env.JOBS_SIGNING_SECRET = SECRET
  process.env.ADMIN_TOKEN = ADMIN
  env = await startEnv(routes)
  const store = env.blobs.port(STORE_NAME)
  await createAccount(store, systemClock, 'fuzz-a', 1_000_000)
  await createAccount(store, systemClock, 'fuzz-b', 1000)
  await createAccount(store, systemClock, 'fuzz-poor', 0)
  keyA = await createApiKey(store, systemClock, 'fuzz-a')
  keyB = await createApiKey(store, systemClock, 'fuzz-b')
  keyPoor = await createApiKey(store, systemClock, 'fuzz-poor')
  secrets = [SECRET, ADMIN, keyA, keyB, keyPoor, env.blobs.token]

  // Silence (and keep) the product's log lines: the worker logs every refused call.
  for (const method of ['log', 'error', 'info', 'warn'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void logLines.push(args.map(String).join(' ')))
  }

  const submit = async (key: string, body: unknown) => {
    const res = await send(env.host.url, {
      method: 'POST',
      target: '/api/jobs',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    if (res.status === 202) tokens.push(JSON.parse(res.body).watchToken as string)
    return { status: res.status, jobId: res.status === 202 ? (JSON.parse(res.body).jobId as string) : null }
  }
  const summarize = async (key: string, text: string, sourceTaskId: string) => {
    const { status, jobId } = await submit(key, { kind: 'summarize', input: { text }, sourceTaskId })
    expect(status).toBe(202)
    return jobId!
  }
  ids.own.push(await summarize(keyA, 'A finished job. It has a few sentences. It ran to the end.', 'task-a'))
  ids.other.push(await summarize(keyB, 'Another account owns this job. Nobody else may see it.', 'task-b'))
  env.host.runWorkers = false
  const canceled = await summarize(keyA, 'A job canceled before it started.', 'task-a')
  env.host.runWorkers = true
  const cancel = await send(env.host.url, { method: 'POST', target: `/api/jobs/${canceled}/cancel`, headers: { authorization: `Bearer ${keyA}` } })
  expect(cancel.status).toBe(200)
  ids.own.push(canceled)
  // Jobs that save files (when this deploy has such a kind): their asset ids become path ids too.
  for (const [key, list, task] of [[keyA, ids.own, 'task-a'], [keyB, ids.other, 'task-b']] as const) {
    const made = await submit(key, { kind: 'render', input: { width: 8, height: 8, maxIterations: 10 }, sourceTaskId: task })
    if (!made.jobId) continue
    await env.host.idle()
    list.push(made.jobId)
    const listed = await send(env.host.url, { method: 'GET', target: `/api/jobs/${made.jobId}/assets`, headers: { authorization: `Bearer ${key}` } })
    for (const asset of listed.status === 200 ? (JSON.parse(listed.body).assets ?? []) : []) {
      list.push(asset.assetId)
      if (String(asset.url).includes('?')) linkQueries.push(String(asset.url).split('?')[1]!)
      assetFiles.push({ assetId: asset.assetId, query: String(asset.url).split('?')[1] ?? '' })
      assetEtags.push(`"${asset.sha256}"`)
    }
  }
  await env.host.idle()
  for (const scope of [{ submit: ['summarize'] }, { submit: ['render', 'summarize'] }, { sourceTaskId: 'task-a' }, { job: ids.own[0] }, { job: ids.other[0] }]) {
    const actions = 'submit' in scope ? ['submit'] : ['read', 'cancel']
    const minted = await send(env.host.url, {
      method: 'POST',
      target: '/api/tokens',
      headers: { authorization: `Bearer ${keyA}`, 'content-type': 'application/json' },
      body: JSON.stringify({ scope, actions }),
    })
    expect(minted.status).toBe(201)
    tokens.push(JSON.parse(minted.body).token as string)
  }
  const now = Math.floor(Date.now() / 1000)
  const claims = { v: 1 as const, account: 'fuzz-a', scope: { job: ids.own[0]! }, actions: ['read' as const], iat: now - 60, exp: now + 3600, gen: 0 }
  tokens.push(signToken(tokenKey(SECRET), { ...claims, iat: now - 7200, exp: now - 1 })) // expired
  tokens.push(signToken(tokenKey(SECRET), { ...claims, gen: 7 })) // revoked (another generation)
  tokens.push(signToken(tokenKey(`${SECRET}-other`), claims)) // another deploy's secret
  expect(tokens.length).toBeGreaterThanOrEqual(10)

  for (const route of httpRoutes) {
    const path = fillPath(route.paths[0]!, Object.fromEntries(route.params.map((p) => [p, ids.own[0]!])))
    const probe = await send(env.host.url, { method: 'PATCH', target: path, headers: { authorization: `Bearer ${keyA}` } })
    const allow = probe.status === 405 ? String(probe.headers.allow ?? '') : ''
    methodsOf.set(route.name, route.methods ?? (allow ? allow.split(',').map((m) => m.trim()) : ['GET', 'POST']))
  }

  const body = JSON.stringify({ jobId: ids.own[0] })
  captured = { body, headers: { 'content-type': 'application/json', ...signWorkerRequest(SECRET, body, Date.now()) } }
}, 120_000)

afterAll(async () => {
  vi.restoreAllMocks()
  await env?.host.stop()
  await env?.blobs.stop()
})

let snapshot: Map<string, string> | null = null

/** Sends one request and checks every property; throws (so fast-check shrinks) on a violation. */
async function check(routeName: string, isApi: boolean, run: () => Promise<{ status: number; headers: Record<string, unknown>; body: string; routed: boolean }>) {
  snapshot ??= await env.snapshot()
  const writesBefore = env.writes()
  const deletesBefore = env.blobs.ops.delete ?? 0
  const started = performance.now()
  const res = await run()
  stats.requestMs += performance.now() - started
  await env.host.idle() // a 202 started a worker: let it finish before counting writes
  const writes = env.writes() - writesBefore

  stats.requests++
  bump(stats.byRoute, routeName)
  bump(stats.byStatus, res.status)
  if (!res.routed) stats.unrouted++
  if (res.status >= 500) stats.fiveXX++
  if (res.status >= 200 && res.status < 300) stats.ok2xx++

  const problems: string[] = []
  if (res.status >= 500) problems.push(`a ${res.status}`)
  else if (!(res.status >= 200 && res.status < 300) && res.status !== 304 && !(res.status >= 400 && res.status < 500)) problems.push(`unexpected status ${res.status}`)

  const is4xx = res.status >= 400 && res.status < 500
  if (is4xx && isApi && res.routed && res.body !== '') {
    let envelope: { error?: { code?: unknown; message?: unknown } } | null = null
    try {
      envelope = JSON.parse(res.body)
    } catch {
      problems.push('4xx body is not JSON')
    }
    const code = envelope?.error?.code
    const message = envelope?.error?.message
    if (typeof code !== 'string' || !/^[a-z][a-z0-9_]*$/.test(code)) problems.push(`4xx without a snake_case error.code: ${res.body.slice(0, 200)}`)
    if (typeof message !== 'string' || message.length === 0) problems.push('4xx without error.message')
    if (!String(res.headers['content-type'] ?? '').startsWith('application/json')) problems.push('4xx not application/json')
  }
  if (is4xx && res.routed && isApi && res.status === 401 && !/^Bearer\b/.test(String(res.headers['www-authenticate'] ?? ''))) problems.push('401 without WWW-Authenticate: Bearer')
  if (is4xx && res.routed && isApi && res.status === 405 && !res.headers.allow) problems.push('405 without Allow')

  if (writes > 0) {
    const after = await env.snapshot()
    if (is4xx) {
      const diff = sameSnapshot(snapshot, after)
      if (diff) {
        stats.writesOn4xx++
        problems.push(`a ${res.status} wrote to the store: ${diff}`)
      } else {
        // No net change. A delete means something was created and removed again (undone); otherwise a conditional write lost.
        const how = (env.blobs.ops.delete ?? 0) > deletesBefore ? 'created then removed' : 'lost a conditional write'
        bump(stats.refusedWritesOn4xx, `${res.status} ${safeCode(res.body)} (${how})`)
      }
    }
    snapshot = after
  }

  const exposed = `${JSON.stringify(res.headers)}\n${res.body}`
  for (const secret of secrets) if (exposed.includes(secret)) problems.push('a secret in the response')
  for (const line of logLines.splice(0)) for (const secret of secrets) if (line.includes(secret)) problems.push(`a secret in a log line: ${line.slice(0, 200)}`)

  if (problems.length > 0) throw new Error(`${routeName}: ${problems.join('; ')} — answered ${res.status} ${res.body.slice(0, 300)}`)
}

const safeCode = (body: string) => {
  try {
    return String(JSON.parse(body)?.error?.code ?? '')
  } catch {
    return ''
  }
}

function requestFor(route: Route): fc.Arbitrary<RawRequest> {
  const primary = methodsOf.get(route.name) ?? ['GET']
  const pathArb: fc.Arbitrary<string> =
    route.params.length === 0
      ? fc.constantFrom(...route.paths)
      : fc
          .tuple(fc.constantFrom(...route.paths), fc.array(pathId(ids), { minLength: route.params.length, maxLength: route.params.length }))
          .map(([path, values]) => fillPath(path, Object.fromEntries(route.params.map((p, i) => [p, values[i]!]))))
  const submissions = route.paths.includes('/api/jobs')
  return fc
    .record({
      method: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...primary) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
      path: pathArb,
      query: fc.oneof(
        { weight: 1, arbitrary: fc.constant('') },
        { weight: 3, arbitrary: queryString(taskIds) },
        { weight: 1, arbitrary: assetLinkQuery(linkQueries) },
      ),
      range: fc.option(fc.tuple(rangeHeader, fc.option(ifRangeHeader(assetEtags), { nil: undefined })), { nil: undefined, freq: 3 }),
      auth: authorization({ good: [keyA, keyB, keyPoor], admin: ADMIN, tokens }),
      queryToken: fc.option(tokenCredential(tokens), { freq: 4, nil: undefined }),
      headerless: fc.boolean(),
      adminAuth: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      type: contentType,
      idem: idempotencyKey,
      extra: fc.option(
        fc.constantFrom<[string, string]>(
          ['if-none-match', '"abc"'],
          ['if-none-match', '*'],
          ['x-jobs-signature', 'v1=00'],
          ['x-jobs-timestamp', String(Date.now())],
          ['accept', 'text/html'],
          ['x-forwarded-for', '127.0.0.1'],
          ['transfer-encoding', 'chunked'],
          ['content-encoding', 'gzip'],
          ['x-http-method-override', 'DELETE'],
          ['cookie', '__proto__=1'],
          ['last-event-id', '2'],
          ['last-event-id', '0'],
          ['last-event-id', ' 1 '],
          ['last-event-id', '-1'],
          ['last-event-id', '9999999999'],
          ['last-event-id', 'job_x'],
        ),
        { nil: undefined },
      ),
      body: requestBody({ submissions, maxBytes: DEFAULT_SETTINGS.maxBodyBytes }),
      bodyOnGet: fc.boolean(),
    })
    .map(({ method, path, query, range, queryToken, headerless, auth, adminAuth, type, idem, extra, body, bodyOnGet }) => {
      const headers: Record<string, string | string[]> = {}
      // The admin route takes the admin token: send it often enough to get past auth there.
      const authValue = adminAuth && route.paths.some((p) => p.startsWith('/api/admin')) ? `Bearer ${ADMIN}` : auth
      // `?token=` is read only without an Authorization header: drop it half the time.
      if (authValue !== undefined && !(queryToken !== undefined && headerless)) headers.authorization = Array.isArray(authValue) ? authValue.map(wireHeader) : wireHeader(authValue)
      if (type !== undefined) headers['content-type'] = wireHeader(type)
      if (idem !== undefined) headers['idempotency-key'] = wireHeader(idem)
      if (extra && extra[0] !== 'transfer-encoding') headers[extra[0]] = extra[1]
      if (range) headers.range = wireHeader(range[0])
      if (range?.[1] !== undefined) headers['if-range'] = wireHeader(range[1])
      const sendsBody = !['GET', 'HEAD'].includes(method) || bodyOnGet
      // Node sends the target as is, but refuses spaces, controls and characters above U+00FF.
      const fullQuery = [query, queryToken === undefined ? '' : `token=${percentEncode(queryToken)}`].filter(Boolean).join('&')
      const target = `${path}${fullQuery ? `?${fullQuery}` : ''}`.replace(/[^\x21-\xff]/gu, percentEncode)
      return { method, target, headers, body: sendsBody ? body : undefined }
    })
}

describe('HTTP routes under fuzzing', () => {
  it('finds the routes to fuzz', () => {
    expect(httpRoutes.filter((r) => r.custom).length).toBeGreaterThanOrEqual(6)
    expect(workerRoutes.map((r) => r.name)).toContain('worker-background')
  })

  for (const route of httpRoutes) {
    it(`${route.name}: ${route.paths.join(', ')}`, async () => {
      const isApi = route.paths.some((p) => p.startsWith('/api/'))
      await fc.assert(
        fc.asyncProperty(requestFor(route), async (request) => {
          await check(route.name, isApi, async () => {
            const responsesBefore = env.host.responses.length
            const res = await send(env.host.url, request)
            return { ...res, headers: res.headers as Record<string, unknown>, routed: env.host.responses.length > responsesBefore }
          })
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: !!process.env.CI },
      )
    }, 600_000)
  }

  it('asset: Range, If-Range and signed links on real files; a 206 says what it carries', async () => {
    expect(assetFiles.length).toBeGreaterThan(0)
    const request = fc.record({
      file: fc.constantFrom(...assetFiles),
      query: fc.oneof(fc.constant('own link'), fc.constant(''), assetLinkQuery(linkQueries)),
      auth: authorization({ good: [keyA, keyB], admin: ADMIN }),
      range: fc.option(rangeHeader, { nil: undefined }),
      ifRange: fc.option(ifRangeHeader(assetEtags), { nil: undefined }),
    })
    await fc.assert(
      fc.asyncProperty(request, async ({ file, query, auth, range, ifRange }) => {
        const headers: Record<string, string | string[]> = {}
        if (auth !== undefined) headers.authorization = Array.isArray(auth) ? auth.map(wireHeader) : wireHeader(auth)
        if (range !== undefined) headers.range = wireHeader(range)
        if (ifRange !== undefined) headers['if-range'] = wireHeader(ifRange)
        const q = query === 'own link' ? file.query : query
        const target = `/api/assets/${file.assetId}${q ? `?${q}` : ''}`.replace(/[^\x21-\xff]/gu, percentEncode)
        await check('asset', true, async () => {
          const res = await send(env.host.url, { method: 'GET', target, headers })
          if (res.status === 206) {
            const [, start, end] = /^bytes (\d+)-(\d+)\/\d+$/.exec(String(res.headers['content-range'])) ?? []
            if (start === undefined || Number(res.headers['content-length']) !== Number(end) - Number(start) + 1) throw new Error(`206 with ${res.headers['content-range']}`)
          }
          if (res.status === 416 && !/^bytes \*\/\d+$/.test(String(res.headers['content-range']))) throw new Error('416 without Content-Range')
          return { ...res, headers: res.headers as Record<string, unknown>, routed: true }
        })
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: !!process.env.CI },
    )
  }, 600_000)

  for (const route of workerRoutes) {
    it(`${route.name}: forged, tampered, expired and replayed signatures (direct call)`, async () => {
      const jobBody = fc.oneof(
        fc.constantFrom(...ids.own, ...ids.other).map((jobId) => JSON.stringify({ jobId })),
        fc.constant(null).map(() => JSON.stringify({ jobId: unknownJobId() })),
        fc.constantFrom('', '{}', 'null', '[]', '{"jobId":null}', '{"jobId":"../queue/x"}', '{"jobId":["job_x"]}', '{"__proto__":{"jobId":"x"}}'),
        jsonText,
        badUtf8.map((b) => b.toString('latin1')),
        weirdString(80),
      )
      type Sig = { kind: string; headers: (body: string, now: number) => Record<string, string>; body?: (body: string) => string }
      const hex = fc.stringMatching(/^[0-9a-f]{64}$/)
      const signature: fc.Arbitrary<Sig> = fc.oneof(
        fc.constant<Sig>({ kind: 'unsigned', headers: () => ({}) }),
        fc.constant<Sig>({ kind: 'valid', headers: (body, now) => signWorkerRequest(SECRET, body, now) }),
        fc.string({ minLength: 32, maxLength: 64 }).map((other): Sig => ({ kind: 'other-secret', headers: (body, now) => signWorkerRequest(`${other}${SECRET.slice(0, 1)}x`, body, now) })),
        fc.tuple(fc.nat(), weirdString(3, 1)).map(([at, junk]): Sig => ({
          kind: 'tampered',
          headers: (body, now) => signWorkerRequest(SECRET, body, now),
          body: (body) => {
            const i = body.length === 0 ? 0 : at % body.length
            const changed = `${body.slice(0, i)}${junk}${body.slice(i + 1)}`
            return changed === body ? `${body} ` : changed
          },
        })),
        fc.integer({ min: SIGNATURE_WINDOW_MS + 1, max: 10 * 365 * 24 * 3600_000 }).map((age): Sig => ({ kind: 'expired', headers: (body, now) => signWorkerRequest(SECRET, body, now - age) })),
        fc.integer({ min: 31_000, max: 10 * 365 * 24 * 3600_000 }).map((ahead): Sig => ({ kind: 'future', headers: (body, now) => signWorkerRequest(SECRET, body, now + ahead) })),
        fc.constant<Sig>({ kind: 'replay', headers: () => captured.headers, body: () => captured.body }),
        fc.constant<Sig>({ kind: 'replay-other-body', headers: () => captured.headers }),
        fc.tuple(weirdString(20), weirdString(80)).map(([ts, sig]): Sig => ({ kind: 'junk', headers: () => ({ [TIMESTAMP_HEADER]: wireHeader(ts).trim(), [SIGNATURE_HEADER]: wireHeader(sig).trim() }) })),
        fc.tuple(hex, fc.constantFrom('v2=', 'V1=', '', 'v1 =', 'sha256=', 'v1=v1=')).map(([h, prefix]): Sig => ({ kind: 'random-hmac', headers: (_b, now) => ({ [TIMESTAMP_HEADER]: String(now), [SIGNATURE_HEADER]: `${prefix}${h}` }) })),
        fc.constantFrom('upper', 'prefix', 'spaces', 'double', 'truncated', 'padded', 'ts-padded', 'ts-float', 'ts-space').map((how): Sig => ({
          kind: `reformatted-${how}`,
          headers: (body, now) => {
            const good = signWorkerRequest(SECRET, body, now)
            const ts = good[TIMESTAMP_HEADER]!
            const sig = good[SIGNATURE_HEADER]!
            switch (how) {
              case 'upper': return { [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: `v1=${sig.slice(3).toUpperCase()}` }
              case 'prefix': return { [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: sig.slice(3) }
              case 'spaces': return { [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: `v1= ${sig.slice(3)}` }
              case 'double': return { [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: `${sig}, ${sig}` }
              case 'truncated': return { [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: sig.slice(0, -2) }
              case 'padded': return { [TIMESTAMP_HEADER]: ts, [SIGNATURE_HEADER]: `${sig}00` }
              case 'ts-padded': return { [TIMESTAMP_HEADER]: `0${ts}`, [SIGNATURE_HEADER]: sig }
              case 'ts-float': return { [TIMESTAMP_HEADER]: `${ts}.0`, [SIGNATURE_HEADER]: sig }
              default: return { [TIMESTAMP_HEADER]: ` ${ts}x`, [SIGNATURE_HEADER]: sig }
            }
          },
        })),
      )
      await fc.assert(
        fc.asyncProperty(jobBody, signature, async (body, sig) => {
          const now = Date.now()
          const headers = sig.headers(body, now)
          const sent = sig.body ? sig.body(body) : body
          const totalOps = () => Object.values(env.blobs.ops).reduce((a, b) => a + b, 0)
          const writesBefore = env.writes()
          let status = 0
          let ops = 0
          await check(route.name, false, async () => {
            const req = new Request(`${env.host.url}${route.paths[0]}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: sent })
            // Counted around the handler alone: check() itself reads the store to snapshot it.
            const opsBefore = totalOps()
            const res = await route.handler(req, contextFor())
            ops = totalOps() - opsBefore
            status = res.status
            return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text(), routed: true }
          })
          // Computed here, independently of lib/core/signing.ts: is this exactly a fresh, correct signature of what was sent?
          const ts = headers[TIMESTAMP_HEADER] ?? ''
          const expected = `v1=${createHmac('sha256', SECRET).update(`${ts}.${sent}`).digest('hex')}`
          const age = now - Number(ts)
          const signedForThisBody = /^\d+$/.test(ts) && headers[SIGNATURE_HEADER] === expected && age <= SIGNATURE_WINDOW_MS && age >= -30_000
          if (!signedForThisBody && status !== 401) throw new Error(`a ${sig.kind} worker call answered ${status}, not 401`)
          if (!signedForThisBody && ops > 0) throw new Error(`a ${sig.kind} worker call touched storage (${ops} operations) before being refused`)
          if (signedForThisBody && status !== 204 && status !== 400) throw new Error(`a signed worker call answered ${status}`)
          if (env.writes() > writesBefore) throw new Error(`a ${sig.kind} worker call for a finished or unknown job wrote to the store`)
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: !!process.env.CI },
      )
    }, 600_000)
  }

  it('jobs: conflicts (409 resource_locked, 402, idempotency reuse) leave the store as it was', async () => {
    const route = httpRoutes.find((r) => r.paths.includes('/api/jobs'))!
    const text = 'This resource is held by a live job. Every other submit of it must be refused.'
    const post = (key: string, body: unknown, headers: Record<string, string> = {}): RawRequest => ({
      method: 'POST',
      target: '/api/jobs',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    })
    env.host.runWorkers = false // the first job stays queued and keeps its lock
    const live = await send(env.host.url, post(keyA, { kind: 'summarize', input: { text } }, { 'idempotency-key': 'fuzz-live' }))
    expect(live.status).toBe(202)
    snapshot = null // that submit wrote (lock, spec, charge) outside check(): start from the store as it is now
    try {
      const variant = fc.record({
        who: fc.constantFrom('locked', 'locked+new-key', 'key-reused', 'key-replayed', 'poor', 'poor+key'),
        key: fc.stringMatching(/^[\x21-\x7e]{1,40}$/),
        title: fc.option(fc.constantFrom('Report', 'تقرير', '\u202etitle'), { nil: undefined }),
        clientJobId: fc.option(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,20}$/), { nil: undefined }),
      })
      await fc.assert(
        fc.asyncProperty(variant, async ({ who, key, title, clientJobId }) => {
          const body = { kind: 'summarize', input: title ? { text, title } : { text }, ...(clientJobId ? { clientJobId } : {}) }
          const request = {
            locked: post(keyA, body),
            'locked+new-key': post(keyA, body, { 'idempotency-key': `new-${key}` }),
            'key-reused': post(keyA, { ...body, sourceTaskId: 'different' }, { 'idempotency-key': 'fuzz-live' }),
            'key-replayed': post(keyA, { kind: 'summarize', input: { text } }, { 'idempotency-key': 'fuzz-live' }),
            poor: post(keyPoor, { kind: 'summarize', input: { text: `${text} ${key}` } }),
            'poor+key': post(keyPoor, { kind: 'summarize', input: { text: `${text} ${key}` } }, { 'idempotency-key': key }),
          }[who]
          let status = 0
          await check(route.name, true, async () => {
            const res = await send(env.host.url, request)
            status = res.status
            return { ...res, headers: res.headers as Record<string, unknown>, routed: true }
          })
          const expected = { locked: [409], 'locked+new-key': [409], 'key-reused': [422], 'key-replayed': [200], poor: [402], 'poor+key': [402] }[who]
          if (!expected.includes(status)) throw new Error(`${who}: expected ${expected}, got ${status}`)
        }),
        { numRuns: CONFLICT_RUNS, seed: SEED, endOnFailure: !!process.env.CI },
      )
    } finally {
      env.host.runWorkers = true
      const { jobId } = JSON.parse(live.body)
      await send(env.host.url, { method: 'POST', target: `/api/jobs/${jobId}/cancel`, headers: { authorization: `Bearer ${keyA}` } })
      snapshot = null
    }
  }, 600_000)

  it('summary: no 5xx, no write on a 4xx, mostly invalid input', () => {
    const covered = [...stats.byRoute.keys()]
    const statuses = [...stats.byStatus.entries()].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ')
    const refused = [...stats.refusedWritesOn4xx.entries()].map(([k, n]) => `${k}×${n}`).join(', ') || 'none'
    process.stdout.write(
      `\nfuzz: ${stats.requests} requests across ${covered.length} routes (${covered.map((r) => `${r} ${stats.byRoute.get(r)}`).join(', ')}), ` +
        `${stats.fiveXX} 5xx, ${stats.writesOn4xx} writes on 4xx\n` +
        `fuzz: statuses ${statuses}; 2xx ${((100 * stats.ok2xx) / Math.max(1, stats.requests)).toFixed(1)}%; unrouted ${stats.unrouted}; ` +
        `4xx that sent a write but left the store unchanged: ${refused}; ${(stats.requestMs / 1000).toFixed(1)} s waiting on requests\n`,
    )
    expect(covered.length).toBe(httpRoutes.length + workerRoutes.length)
    expect(stats.fiveXX).toBe(0)
    expect(stats.writesOn4xx).toBe(0)
    expect(stats.ok2xx / stats.requests).toBeLessThan(0.35) // the generators mostly produce invalid input
  })
})
