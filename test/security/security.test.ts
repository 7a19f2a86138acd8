/**
 * Security properties, through the real function modules over real HTTP on a
 * real local Blobs server (every function in netlify/functions, routed by its
 * config.path: see test/support/functions.ts):
 *
 * - job (and asset) ids are unguessable: 128 random bits after a time prefix,
 *   no structure between consecutive ids, and the id patterns refuse junk;
 * - API keys exist in storage only as SHA-256 hashes;
 * - the worker refuses unsigned, foreign-secret, tampered, expired and
 *   future-dated calls without touching storage, and a replayed or duplicated
 *   valid call runs a job once;
 * - every /api route answers 401 (with `WWW-Authenticate: Bearer`) to a
 *   missing or bad credential before any storage operation;
 * - the admin route refuses every token but its own;
 * - another account's ids answer byte for byte like ids that do not exist;
 * - a downloaded file is exactly the bytes its job saved;
 * - no response carries a secret, a stack, internal error text, a storage
 *   key or path, or another account's data (the admin route may show
 *   internal errors, never secrets); no log line carries a secret.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createApiKey, hashApiKey } from '../../lib/accounts/api-keys.ts'
import { systemClock } from '../../lib/core/clock.ts'
import { createAccount, readAccount } from '../../lib/credits/index.ts'
import * as idModule from '../../lib/core/ids.ts'
import { SIGNATURE_HEADER, SIGNATURE_WINDOW_MS, TIMESTAMP_HEADER, signWorkerRequest } from '../../lib/core/signing.ts'
import { apiRoutes as documentedRoutes } from '../../lib/http/routes/index.ts'
import { STORE_NAME, registerJobKinds } from '../../netlify/app.ts'
import { failing, slow } from '../support/kinds.ts'
import { weirdString } from '../fuzz/arbitraries.ts'
import { type Env, type Route, contextFor, fillPath, send, startEnv, unknownJobId } from '../fuzz/harness.ts'

const SECRET = `sec-signing-secret-${randomBytes(24).toString('base64url')}`
const ADMIN = `sec-admin-token-${randomBytes(18).toString('base64url')}`
const { JOB_ID_PATTERN, randomIds } = idModule

let env: Env
let keyA: string
let keyB: string
let keyC: string
const apiKeys: string[] = []
const keyAccount = new Map<string, string>()
const owner = new Map<string, string>() // job/asset id → account
const logLines: string[] = []

beforeAll(async () => {
  process.env.JOBS_SIGNING_SECRET = SECRET
  process.env.ADMIN_TOKEN = ADMIN
  registerJobKinds([slow, failing])
  env = await startEnv()
  const store = env.blobs.port(STORE_NAME)
  await createAccount(store, systemClock, 'sec-a', 1000)
  await createAccount(store, systemClock, 'sec-b', 1000)
  keyA = await createApiKey(store, systemClock, 'sec-a', 'primary')
  keyB = await createApiKey(store, systemClock, 'sec-b')
  keyC = await createApiKey(store, systemClock, 'sec-a', 'second key of sec-a')
  apiKeys.push(keyA, keyB, keyC)
  keyAccount.set(keyA, 'sec-a').set(keyB, 'sec-b').set(keyC, 'sec-a')
  for (const method of ['log', 'error', 'warn', 'info', 'debug'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void logLines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a) ?? String(a))).join(' ')))
  }
}, 60_000)

afterAll(async () => {
  vi.restoreAllMocks()
  await env?.host.stop()
  await env?.blobs.stop()
})

const accountOf = (key: string | null | undefined) => keyAccount.get(key ?? '') ?? null

async function call(path: string, init: { method?: string; key?: string | null; headers?: Record<string, string>; json?: unknown; body?: string } = {}) {
  const headers: Record<string, string> = { ...init.headers }
  const key = init.key === undefined ? keyA : init.key
  if (key) headers.authorization = `Bearer ${key}`
  let body = init.body
  if (init.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(init.json)
  }
  const res = await send(env.host.url, { method: init.method ?? (body === undefined ? 'GET' : 'POST'), target: path, headers, body })
  return { ...res, json: () => JSON.parse(res.body) }
}

async function submit(body: unknown, key = keyA, headers: Record<string, string> = {}) {
  const res = await call('/api/jobs', { json: body, key, headers })
  if (res.status === 202) owner.set(res.json().jobId, accountOf(key)!)
  return res
}

async function follow(jobId: string, key = keyA) {
  const events: { seq: number; type: string; data: any }[] = []
  let after = 0
  for (let i = 0; i < 200; i++) {
    const feed = (await call(`/api/jobs/${jobId}/events?after=${after}&wait=2`, { key })).json()
    events.push(...feed.events)
    after = feed.next
    if (feed.done) return { events, feed }
  }
  throw new Error('job never finished')
}

const totalOps = () => Object.values(env.blobs.ops).reduce((a, b) => a + b, 0)
// The local-development token route does not exist outside `netlify dev` (404, no read): test/tokens-dev.test.ts.
/** The routes the OpenAPI document says need no credential: they describe the API and read no storage. */
const PUBLIC_PATHS = new Set(documentedRoutes.filter((r) => r.auth === 'none').map((r) => r.path))
const isPublicRoute = (r: Route) => r.paths.every((p) => PUBLIC_PATHS.has(p))
const apiRoutes = () => env.host.routes.filter((r) => r.custom && r.paths.some((p) => p.startsWith('/api/')) && !isPublicRoute(r) && r.name !== 'dev-token')
const isAdminRoute = (r: Route) => r.paths.some((p) => p.startsWith('/api/admin'))

/** Methods a route answers, from the Allow header of its 405 (the method check comes before anything else). */
async function methodsOf(route: Route): Promise<string[]> {
  if (route.methods) return route.methods
  const res = await call(fillPath(route.paths[0]!, Object.fromEntries(route.params.map((p) => [p, unknownJobId()]))), { method: 'PATCH', key: null })
  return res.status === 405 && res.headers.allow ? String(res.headers.allow).split(',').map((m) => m.trim()) : ['GET', 'POST']
}

describe('ids are unguessable', () => {
  it('a job id is a time prefix and 128 random bits; consecutive ids share nothing else', () => {
    const N = 20_000
    const before = Date.now()
    const made = Array.from({ length: N }, () => randomIds('job'))
    const after = Date.now()
    expect(new Set(made).size).toBe(N)
    const randomParts: string[] = []
    for (const id of made) {
      expect(id).toMatch(JOB_ID_PATTERN)
      const match = /^job_([0-9a-z]+?)([0-9a-f]{32})$/.exec(id)!
      // The prefix is the creation time, nothing else; the rest is 32 hex digits = 128 bits (≥ 120 required).
      const time = parseInt(id.slice(4, id.length - 32), 36)
      expect(time).toBeGreaterThanOrEqual(before)
      expect(time).toBeLessThanOrEqual(after)
      expect(match).not.toBeNull()
      randomParts.push(id.slice(-32))
    }
    expect(randomParts[0]!.length * 4).toBeGreaterThanOrEqual(120)
    expect(new Set(randomParts).size).toBe(N)

    // Every hex position is uniform (chi-square, 15 degrees of freedom; 60 is far beyond p = 1e-6).
    for (let position = 0; position < 32; position++) {
      const counts = new Array(16).fill(0)
      for (const part of randomParts) counts[parseInt(part[position]!, 16)]++
      const expected = N / 16
      const chi2 = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0)
      expect(chi2, `hex position ${position}`).toBeLessThan(60)
    }
    // Every bit is set half the time (within 6 sigma).
    const bits = randomParts.map((p) => BigInt(`0x${p}`))
    for (let bit = 0n; bit < 128n; bit++) {
      const ones = bits.reduce((n, v) => n + Number((v >> bit) & 1n), 0)
      expect(Math.abs(ones - N / 2), `bit ${bit}`).toBeLessThan(6 * Math.sqrt(N / 4))
    }
    // No sequential structure: consecutive ids differ in ~64 bits, share no long prefix, and their differences never repeat.
    let hamming = 0
    const differences = new Set<bigint>()
    for (let i = 1; i < N; i++) {
      const x = bits[i]! ^ bits[i - 1]!
      hamming += x.toString(2).replace(/0/g, '').length
      differences.add(bits[i]! - bits[i - 1]!)
      let shared = 0
      while (shared < 32 && randomParts[i]![shared] === randomParts[i - 1]![shared]) shared++
      expect(shared).toBeLessThan(8) // P(≥ 8 shared hex digits) = 16^-8 per pair
    }
    expect(hamming / (N - 1)).toBeGreaterThan(62)
    expect(hamming / (N - 1)).toBeLessThan(66)
    expect(differences.size).toBe(N - 1)
  })

  it('the ids the API hands out look the same: distinct random parts, nothing derived from the account or input', async () => {
    env.host.runWorkers = false
    const ids: string[] = []
    for (let i = 0; i < 12; i++) {
      const res = await submit({ kind: 'slow', input: { steps: 1, delayMs: 0 } }, i % 2 ? keyA : keyB)
      expect(res.status).toBe(202)
      ids.push(res.json().jobId)
    }
    env.host.runWorkers = true
    for (const id of ids) {
      expect(id).toMatch(JOB_ID_PATTERN)
      await call(`/api/jobs/${id}/cancel`, { method: 'POST', key: owner.get(id) === 'sec-a' ? keyA : keyB })
    }
    const parts = ids.map((id) => id.slice(-32))
    expect(new Set(parts).size).toBe(ids.length)
    for (let i = 1; i < parts.length; i++) expect(parts[i]!.slice(0, 6)).not.toBe(parts[i - 1]!.slice(0, 6))
  })

  it('every id pattern refuses junk and near misses', () => {
    const patterns = Object.entries(idModule).filter(([name, value]) => name.endsWith('_ID_PATTERN') && value instanceof RegExp) as [string, RegExp][]
    expect(patterns.map(([name]) => name)).toContain('JOB_ID_PATTERN')
    for (const [name, pattern] of patterns) {
      const prefix = name.replace(/_ID_PATTERN$/, '').toLowerCase()
      const good = randomIds(prefix)
      expect(good, name).toMatch(pattern)
      const nearMisses = [
        // (`${good}0` is shaped right: the time prefix is 8-11 characters. The pattern checks shape, the store checks existence.)
        '', prefix, `${prefix}_`, good.toUpperCase(), `${good}-`, good.slice(0, -1), ` ${good}`, `${good} `, `${good}\n`, `\n${good}`, `${good}\u0000`,
        `${good.slice(0, -1)}g`, `${good.slice(0, -1)}A`, good.replace('_', '-'), good.replace('_', '/'), `../${good}`, `${good}/../x`, `${good}%00`,
        `${prefix}_${'0'.repeat(7)}${'a'.repeat(32)}`, `${prefix}_${'0'.repeat(12)}${'a'.repeat(32)}`, `${prefix}_${'0'.repeat(8)}${'a'.repeat(31)}`,
        `${prefix}_${'0'.repeat(8)}${'٣'.repeat(32)}`, `${prefix}_${'0'.repeat(8)}${'ａ'.repeat(32)}`, `${prefix}_${'0'.repeat(8)}${'a'.repeat(31)}\u200b`,
      ]
      for (const miss of nearMisses) expect(pattern.test(miss), `${name} accepted ${JSON.stringify(miss)}`).toBe(false)
      fc.assert(
        fc.property(weirdString(60), fc.nat(), (junk, at) => {
          // Anything with a character outside [0-9a-z_], or of the wrong length, is refused.
          const spliced = `${good.slice(0, at % good.length)}${junk}${good.slice(at % good.length)}`
          if (/[^0-9a-z_]/.test(junk) || junk.length > 3) expect(pattern.test(spliced)).toBe(false)
          if (/[^0-9a-z_]/.test(junk)) expect(pattern.test(junk)).toBe(false)
        }),
        { numRuns: 2000 },
      )
    }
  })
})

describe('API keys are stored only as hashes', () => {
  it('no blob, key or metadata in any store contains a plain key, its secret part or its raw bytes', async () => {
    const extra = await createApiKey(env.blobs.port(STORE_NAME), systemClock, 'sec-b', 'made in this test')
    apiKeys.push(extra)
    keyAccount.set(extra, 'sec-b')
    expect((await call('/api/account', { key: extra })).status).toBe(200) // the key works
    const { stores } = await (await import('@netlify/blobs')).listStores({ siteID: env.blobs.siteID, token: env.blobs.token, edgeURL: env.blobs.url, uncachedEdgeURL: env.blobs.url })
    let scanned = 0
    for (const name of new Set([STORE_NAME, ...stores])) {
      const store = env.blobs.sdkStore(name)
      for (const { key } of (await store.list()).blobs) {
        const entry = await store.getWithMetadata(key, { type: 'arrayBuffer' })
        const bytes = Buffer.from(entry!.data)
        const haystacks = [key, bytes.toString('utf8'), bytes.toString('latin1'), JSON.stringify(entry!.metadata)]
        for (const apiKey of apiKeys) {
          // `djk_<account>.<secret>` (or `djk_<secret>` for a key of the old format): the account is not secret.
          const secretPart = apiKey.slice(Math.max('djk_'.length, apiKey.lastIndexOf('.') + 1))
          const raw = Buffer.from(secretPart, 'base64url')
          for (const hay of haystacks) {
            expect(hay.includes(apiKey), `${name}:${key} holds an API key`).toBe(false)
            expect(hay.includes(secretPart), `${name}:${key} holds a key's secret part`).toBe(false)
            expect(hay.includes(raw.toString('hex')), `${name}:${key} holds a key's bytes`).toBe(false)
          }
          expect(bytes.includes(raw), `${name}:${key} holds a key's raw bytes`).toBe(false)
        }
        scanned++
      }
    }
    expect(scanned).toBeGreaterThan(4)
    // What is stored is the SHA-256 of the key: in its account's record (or, for a key of the old
    // format, under apikey/<hash>).
    const { keys } = await env.blobs.port(STORE_NAME).list('apikey/')
    for (const apiKey of apiKeys) {
      const hash = createHash('sha256').update(apiKey).digest('hex')
      const record = await readAccount(env.blobs.port(STORE_NAME), keyAccount.get(apiKey)!)
      expect(keys.includes(`apikey/${hash}`) || record?.record.apiKeys[hash] !== undefined, apiKey.slice(0, 12)).toBe(true)
    }
    expect(hashApiKey(extra)).toMatch(/^[0-9a-f]{64}$/)
  })
})

describe('the worker only acts on fresh calls signed with the secret', () => {
  const worker = () => env.host.routes.find((r) => r.background)!
  const workerCall = async (body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string>) => {
    const res = await worker().handler(new Request(`${env.host.url}${worker().paths[0]}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body }), contextFor())
    return res.status
  }
  const queued = async () => {
    env.host.runWorkers = false
    const res = await submit({ kind: 'slow', input: { steps: 3, delayMs: 0 } })
    env.host.runWorkers = true
    expect(res.status).toBe(202)
    return res.json().jobId as string
  }

  it('refuses unsigned, foreign-secret, tampered, expired, future-dated and malformed calls, touching no storage', async () => {
    const jobId = await queued()
    const body = JSON.stringify({ jobId })
    const now = Date.now()
    const good = signWorkerRequest(SECRET, body, now)
    const forged: [string, string | Uint8Array<ArrayBuffer>, Record<string, string>][] = [
      ['unsigned', body, {}],
      ['timestamp only', body, { [TIMESTAMP_HEADER]: String(now) }],
      ['signature only', body, { [SIGNATURE_HEADER]: good[SIGNATURE_HEADER]! }],
      ['another secret', body, signWorkerRequest(`another-secret-${randomBytes(16).toString('hex')}`, body, now)],
      ['the secret with a character changed', body, signWorkerRequest(`${SECRET.slice(0, -1)}${SECRET.endsWith('a') ? 'b' : 'a'}`, body, now)],
      ['an empty secret', body, signWorkerRequest('', body, now)],
      ['tampered body', JSON.stringify({ jobId: unknownJobId() }), good],
      ['tampered body (whitespace)', `${body} `, good],
      // A text decoder drops a leading byte-order mark and replaces invalid UTF-8: the signature must cover the bytes.
      ['tampered body (byte-order mark added)', `\uFEFF${body}`, good],
      ['tampered body (invalid UTF-8 added)', new Uint8Array([...Buffer.from(body), 0xff]), signWorkerRequest(SECRET, `${body}\uFFFD`, now)],
      ['tampered timestamp', body, { ...good, [TIMESTAMP_HEADER]: String(now + 1) }],
      ['expired', body, signWorkerRequest(SECRET, body, now - SIGNATURE_WINDOW_MS - 1000)],
      ['expired long ago', body, signWorkerRequest(SECRET, body, 1)],
      ['from the future', body, signWorkerRequest(SECRET, body, now + 60_000)],
      ['uppercase hex', body, { ...good, [SIGNATURE_HEADER]: `v1=${good[SIGNATURE_HEADER]!.slice(3).toUpperCase()}` }],
      ['no version prefix', body, { ...good, [SIGNATURE_HEADER]: good[SIGNATURE_HEADER]!.slice(3) }],
      ['truncated', body, { ...good, [SIGNATURE_HEADER]: good[SIGNATURE_HEADER]!.slice(0, 20) }],
      ['non-numeric timestamp', body, { ...good, [TIMESTAMP_HEADER]: `${now}abc` }],
      ['sha1 instead of sha256', body, { [TIMESTAMP_HEADER]: String(now), [SIGNATURE_HEADER]: `v1=${createHmac('sha1', SECRET).update(`${now}.${body}`).digest('hex')}` }],
      ['signed without the timestamp', body, { [TIMESTAMP_HEADER]: String(now), [SIGNATURE_HEADER]: `v1=${createHmac('sha256', SECRET).update(body).digest('hex')}` }],
    ]
    for (const [name, sent, headers] of forged) {
      const opsBefore = totalOps()
      expect(await workerCall(sent, headers), name).toBe(401)
      expect(totalOps() - opsBefore, `${name} touched storage`).toBe(0)
    }
    const status = (await call(`/api/jobs/${jobId}`)).json()
    expect(status).toMatchObject({ status: 'queued', lastSeq: 0 })
    // Signed bytes that are not a JSON call (here with a byte-order mark) are refused as malformed, not as forged.
    const marked = `\uFEFF${body}`
    expect(await workerCall(marked, signWorkerRequest(SECRET, marked, Date.now()))).toBe(400)
    // The genuine call runs it.
    expect(await workerCall(body, signWorkerRequest(SECRET, body, Date.now()))).toBe(204)
    expect((await follow(jobId)).feed.status).toBe('complete')
  })

  it('a replayed valid call, or five deliveries at once, run a job exactly once', async () => {
    const jobId = await queued()
    const body = JSON.stringify({ jobId })
    const headers = signWorkerRequest(SECRET, body, Date.now())
    expect(await workerCall(body, headers)).toBe(204)
    const first = await follow(jobId)
    expect(first.events.filter((e) => e.type === 'started')).toHaveLength(1)
    const writesBefore = env.writes()
    expect(await workerCall(body, headers)).toBe(204) // the same request again, inside the window
    expect(env.writes() - writesBefore).toBe(0)
    expect((await follow(jobId)).events).toEqual(first.events)

    const other = await queued()
    const otherBody = JSON.stringify({ jobId: other })
    const signed = signWorkerRequest(SECRET, otherBody, Date.now())
    const statuses = await Promise.all(Array.from({ length: 5 }, () => workerCall(otherBody, signed)))
    expect(statuses).toEqual([204, 204, 204, 204, 204])
    const { events } = await follow(other)
    expect(events.filter((e) => e.type === 'started')).toHaveLength(1)
    expect(events.filter((e) => e.type === 'done')).toHaveLength(1)
    expect(events.filter((e) => e.type === 'step')).toHaveLength(3)
  })
})

describe('authentication comes first', () => {
  it('every /api route answers 401 with WWW-Authenticate: Bearer to a missing or bad credential, before any storage operation', async () => {
    const routes = apiRoutes()
    expect(routes.length).toBeGreaterThanOrEqual(6)
    const noKey = [null, '', 'Bearer', 'Bearer ', 'Basic c2VjLWE6cGFzc3dvcmQ=', `Token ${keyA}`, keyA, `Bearer ${keyA}x`, `Bearer ${keyA.slice(0, -1)}`, `Bearer ${ADMIN}x`, 'Bearer \u00e9\u00e9']
    const unknownKey = `Bearer djk_${randomBytes(32).toString('base64url')}`
    let checked = 0
    for (const route of routes) {
      const admin = isAdminRoute(route)
      for (const method of await methodsOf(route)) {
        for (const path of route.paths) {
          const target = fillPath(path, Object.fromEntries(route.params.map((p) => [p, unknownJobId()])))
          const credentials = admin ? [...noKey, unknownKey, `Bearer ${keyA}`] : [...noKey, unknownKey]
          for (const authorization of credentials) {
            const opsBefore = { ...env.blobs.ops }
            const headers: Record<string, string> = authorization === null ? {} : { authorization }
            // A body that is wrong in every other way too: authentication must be what answers.
            const res = await send(env.host.url, { method, target: `${target}?after=-1&limit=0`, headers: { ...headers, 'content-type': 'text/plain' }, body: method === 'GET' || method === 'HEAD' ? undefined : '{not json' })
            const label = `${method} ${path} with ${JSON.stringify(authorization)}`
            expect(res.status, label).toBe(401)
            expect(String(res.headers['www-authenticate']), label).toMatch(/^Bearer\b/)
            if (method !== 'HEAD') expect(JSON.parse(res.body).error, label).toMatchObject({ code: 'unauthorized', message: expect.any(String) })
            const ops = Object.fromEntries(Object.entries(env.blobs.ops).map(([type, n]) => [type, n - (opsBefore[type] ?? 0)]).filter(([, n]) => (n as number) > 0))
            if (authorization === unknownKey && !admin) {
              // The one lookup a well-formed key needs: a read of its account record (or apikey/<hash>). Nothing else.
              expect(Object.keys(ops).filter((t) => t !== 'get' && t !== 'getMetadata'), label).toEqual([])
              expect((ops.get ?? 0) + (ops.getMetadata ?? 0), label).toBeLessThanOrEqual(1)
            } else {
              expect(ops, label).toEqual({})
            }
            checked++
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(routes.length * 10)
  })

  it('the public routes (kind list, OpenAPI document) read no storage and answer the same with any credential or none', async () => {
    const routes = env.host.routes.filter((r) => r.custom && isPublicRoute(r))
    expect(routes.map((r) => r.paths[0]).sort()).toEqual(['/api/kinds', '/api/openapi.json'])
    for (const route of routes) {
      const bodies = new Set<string>()
      for (const key of [null, keyA, ADMIN, 'garbage']) {
        const opsBefore = { ...env.blobs.ops }
        const res = await call(route.paths[0]!, { key })
        expect(res.status, route.paths[0]).toBe(200)
        expect(Object.entries(env.blobs.ops).filter(([type, n]) => n !== (opsBefore[type] ?? 0)), route.paths[0]).toEqual([])
        bodies.add(res.body)
      }
      expect(bodies.size, route.paths[0]).toBe(1)
    }
  })

  it('the admin route refuses every token but its own (and everything when ADMIN_TOKEN is unset or short)', async () => {
    // An admin route read with GET and no path parameters (the others are covered in test/admin.test.ts).
    const route = apiRoutes().find((r) => isAdminRoute(r) && r.params.length === 0)!
    const path = route.paths[0]!
    const wrong = [
      undefined, '', 'Bearer', `Bearer ${ADMIN.slice(0, -1)}`, `Bearer ${ADMIN}x`, `Bearer ${ADMIN.toUpperCase()}`, `Bearer x${ADMIN.slice(1)}`,
      `Bearer ${ADMIN.slice(0, 16)}`, `Bearer ${'a'.repeat(ADMIN.length)}`, `Bearer ${'a'.repeat(5000)}`, `Basic ${Buffer.from(`admin:${ADMIN}`).toString('base64')}`,
      ADMIN, `Token ${ADMIN}`, `Bearer ${keyA}`, `Bearer ${SECRET}`, `Bearer ${ADMIN} ${ADMIN}`, `Bearer "${ADMIN}"`,
    ]
    for (const authorization of wrong) {
      const opsBefore = totalOps()
      const res = await send(env.host.url, { method: 'GET', target: path, headers: authorization === undefined ? {} : { authorization } })
      expect(res.status, String(authorization).slice(0, 40)).toBe(401)
      expect(String(res.headers['www-authenticate'])).toMatch(/^Bearer\b/)
      expect(JSON.parse(res.body).error.code).toBe('unauthorized')
      expect(totalOps() - opsBefore).toBe(0)
    }
    expect((await call(path, { key: ADMIN })).status).toBe(200)
    expect((await call(path, { key: null, headers: { authorization: `bearer   ${ADMIN}` } })).status).toBe(200) // the scheme is case-insensitive

    const saved = process.env.ADMIN_TOKEN
    try {
      delete process.env.ADMIN_TOKEN
      for (const authorization of ['Bearer ', `Bearer ${ADMIN}`, 'Bearer undefined']) {
        expect((await send(env.host.url, { method: 'GET', target: path, headers: { authorization } })).status).toBe(401)
      }
      process.env.ADMIN_TOKEN = 'short-token'
      expect((await call(path, { key: 'short-token' })).status).toBe(401)
      process.env.ADMIN_TOKEN = ''
      expect((await send(env.host.url, { method: 'GET', target: path, headers: { authorization: 'Bearer ' } })).status).toBe(401)
    } finally {
      process.env.ADMIN_TOKEN = saved
    }
  })
})

describe('tenant isolation and what responses carry', () => {
  it('another account’s ids answer byte for byte like ids that exist nowhere, on every route with an id', async () => {
    // Things that belong to sec-b: a finished job, a job that fails, and (where the deploy has a kind that saves files) an asset.
    const done = (await submit({ kind: 'summarize', input: { text: 'Account b wrote this. It is private to account b. Nobody else reads it.' }, sourceTaskId: 'task-of-b' }, keyB)).json().jobId
    const failed = (await submit({ kind: 'failing', input: {} }, keyB)).json().jobId
    await follow(done, keyB)
    await follow(failed, keyB)
    const theirs = [done, failed]
    const render = await submit({ kind: 'render', input: { width: 4, height: 4, maxIterations: 5 }, sourceTaskId: 'task-of-b' }, keyB)
    if (render.status === 202) {
      await follow(render.json().jobId, keyB)
      for (const asset of (await call(`/api/jobs/${render.json().jobId}/assets`, { key: keyB })).json().assets) {
        owner.set(asset.assetId, 'sec-b')
        theirs.push(asset.assetId)
      }
    }
    let compared = 0
    for (const route of apiRoutes().filter((r) => r.params.length > 0)) {
      for (const method of await methodsOf(route)) {
        for (const id of theirs) {
          const prefix = id.slice(0, id.indexOf('_'))
          const missing = `${prefix}_${id.slice(prefix.length + 1, id.length - 32)}${randomBytes(16).toString('hex')}`
          const target = (x: string) => fillPath(route.paths[0]!, Object.fromEntries(route.params.map((p) => [p, x])))
          const mine = await call(target(missing), { method, key: keyA })
          const other = await call(target(id), { method, key: keyA })
          const label = `${method} ${route.paths[0]} for ${id}`
          expect(other.status, label).toBe(mine.status)
          expect(other.body, label).toBe(mine.body)
          expect(other.status, label).toBeGreaterThanOrEqual(400)
          compared++
        }
      }
    }
    expect(compared).toBeGreaterThan(4)
    // A source task of another account lists nothing, like a task that does not exist.
    const listing = apiRoutes().find((r) => r.paths.includes('/api/assets'))
    if (listing) {
      const res = await call('/api/assets?sourceTaskId=task-of-b', { key: keyA })
      expect(res.status).toBe(200)
      expect(res.json().assets).toEqual([])
    }
  })

  it('a downloaded file is exactly the bytes its job saved (no pooled memory, Content-Length true)', async () => {
    const res = await submit({ kind: 'render', input: { width: 16, height: 9, maxIterations: 20 }, sourceTaskId: 'download-check' })
    if (res.status !== 202) return // this deploy has no kind that saves files
    const { jobId } = res.json()
    await follow(jobId)
    const { assets } = (await call(`/api/jobs/${jobId}/assets`)).json()
    expect(assets.length).toBeGreaterThan(0)
    for (const asset of assets) {
      owner.set(asset.assetId, 'sec-a')
      const download = await fetch(`${env.host.url}${asset.url}`, { headers: { authorization: `Bearer ${keyA}` } })
      expect(download.status).toBe(200)
      const bytes = Buffer.from(await download.arrayBuffer())
      expect(bytes.length).toBe(asset.bytes)
      expect(Number(download.headers.get('content-length'))).toBe(bytes.length)
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(asset.sha256)
      expect(download.headers.get('etag')).toBe(`"${asset.sha256}"`)
      expect(bytes.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a') // a PNG, and only a PNG
      for (const secret of [SECRET, ADMIN, ...apiKeys, env.blobs.token, 'writeId']) expect(bytes.includes(Buffer.from(secret))).toBe(false)
    }
  })

  it('the asset store keeps exactly the bytes it is given, even a small Buffer from Node’s shared pool', async () => {
    const store = env.blobs.sdkStore('sec-pool-check')
    const port = env.blobs.assetPort('sec-pool-check')
    Buffer.from(`pool neighbour holding ${SECRET}`) // something else in the pool
    const small = Buffer.from('eleven byte') // a view into the 8 KB pool
    expect(small.buffer.byteLength).toBeGreaterThan(small.byteLength)
    await port.put('k', small, {})
    const stored = Buffer.from((await store.get('k', { type: 'arrayBuffer' }))!)
    expect(stored.toString()).toBe('eleven byte')
    await port.put('k2', small.subarray(3, 7), {})
    expect(Buffer.from((await store.get('k2', { type: 'arrayBuffer' }))!).toString()).toBe('ven ')
    await store.delete('k')
    await store.delete('k2')
  })

  it('a failing job, a public failure, conflicts and bad input show clients only safe text', async () => {
    const internal = (await submit({ kind: 'failing', input: {} })).json().jobId
    const visible = (await submit({ kind: 'failing', input: { public: true } })).json().jobId
    expect((await follow(internal)).events.at(-1)).toMatchObject({ type: 'error', data: { error: { code: 'internal_error' } } })
    const pub = (await follow(visible)).events.at(-1)!
    expect(pub.data.error.code).toBe('bad_document')
    expect(pub.data.error.message).not.toMatch(/\/var\/data|db\.internal|5432/)
    for (const id of [internal, visible]) {
      await call(`/api/jobs/${id}`)
      await call(`/api/jobs/${id}/cancel`, { method: 'POST' })
    }
    env.host.runWorkers = false
    const text = 'Held by a live job for the leak scan. Two sentences.'
    const live = (await submit({ kind: 'summarize', input: { text } })).json().jobId
    const locked = await submit({ kind: 'summarize', input: { text } })
    expect(locked.status).toBe(409)
    expect(locked.json().holder.jobId).toBe(live)
    const lockedForB = await submit({ kind: 'summarize', input: { text } }, keyB)
    expect(lockedForB.status).toBe(202) // another account: another resource
    env.host.runWorkers = true
    await call(`/api/jobs/${live}/cancel`, { method: 'POST' })
    await call(`/api/jobs/${lockedForB.json().jobId}/cancel`, { method: 'POST', key: keyB })
    await submit({ kind: 'summarize', input: { text: 42, windowChars: 'x' }, sourceTaskId: '../../etc/passwd' })
    await submit({ kind: 'teleport', input: {} })
    await call('/api/jobs', { body: '{"kind":', headers: { 'content-type': 'application/json' } })
    await call(`/api/jobs/${internal}/events?after=999`)
    await call('/api/account')
    await call('/api/account', { key: keyB })
    await call('/api/admin/jobs?limit=500', { key: ADMIN })
    await call('/api/admin/jobs?limit=0', { key: ADMIN })
    await env.host.idle()
  })

  it('storage being down answers 503 without detail, and logs no secret', async () => {
    const saved = process.env.NETLIFY_BLOBS_CONTEXT
    try {
      process.env.NETLIFY_BLOBS_CONTEXT = Buffer.from(JSON.stringify({ edgeURL: 'http://127.0.0.1:9', uncachedEdgeURL: 'http://127.0.0.1:9', token: env.blobs.token, siteID: env.blobs.siteID, deployID: '0' })).toString('base64')
      const res = await call('/api/account')
      expect(res.status).toBe(503)
      expect(res.json().error.code).toBe('storage_unavailable')
      expect(res.headers['retry-after']).toBeDefined()
    } finally {
      process.env.NETLIFY_BLOBS_CONTEXT = saved
    }
  })

  it('no response carried a secret, a stack, internal error text, a storage key or path, or another account’s data', async () => {
    await env.host.idle()
    const responses = env.host.responses
    expect(responses.length).toBeGreaterThan(150)
    const secrets = [SECRET, ADMIN, ...apiKeys, env.blobs.token, ...apiKeys.map((k) => k.slice(4)), ...apiKeys.map(hashApiKey)]
    const internal = /10\.0\.3\.7|internal\.example\.com|sk_live|ECONNREFUSED|\/var\/data|db\.internal|writeId|lease/
    const stack = /\n\s+at\s|\bat\s+\S+\s+\(.*:\d+:\d+\)|node:internal|file:\/\/|\.ts:\d+/
    const storage = /(?<![a-z])(?:queue|lock|apikey|job|events|idem|expiry|ledger|account|asset|byjob|bytask|webhook|due)\/|durable-jobs|generated\//
    const paths = [tmpdir(), process.cwd(), 'node_modules', 'blobs-test-', env.blobs.url, '127.0.0.1:9', 'NETLIFY_BLOBS']
    const accounts = ['sec-a', 'sec-b']
    let scanned = 0
    for (const response of responses) {
      const who = accountOf(response.authorization?.replace(/^Bearer\s+/i, '').trim())
      const admin = response.path.startsWith('/api/admin/')
      const text = `${JSON.stringify(response.headers)}\n${response.body}`
      const where = `${response.method} ${response.path} (${response.status})`
      for (const secret of secrets) expect(text.includes(secret), `${where} shows a secret`).toBe(false)
      if (response.status === 401) expect(String(response.headers['www-authenticate']), where).toMatch(/^Bearer\b/)
      if (response.status >= 400 && response.path.startsWith('/api/') && response.method !== 'HEAD') {
        expect(JSON.parse(response.body).error, where).toMatchObject({ code: expect.stringMatching(/^[a-z][a-z0-9_]*$/), message: expect.any(String) })
      }
      scanned++
      if (admin) continue // operators see internal errors, lock keys and accounts behind ADMIN_TOKEN
      if (response.headers['content-type']?.startsWith('image/')) continue // file bytes, checked above
      expect(text, where).not.toMatch(internal)
      expect(text, where).not.toMatch(stack)
      // Whole API paths go first (`/api/account/webhook` is a route, not a storage key).
      expect(text.replace(/\/api\/[A-Za-z0-9_{}:.\/-]*/g, ''), where).not.toMatch(storage)
      for (const path of paths) expect(text.includes(path), `${where} shows ${path}`).toBe(false)
      for (const account of accounts) if (account !== who) expect(text.includes(account), `${where} shows account ${account} to ${who}`).toBe(false)
      for (const [id, account] of owner) if (account !== who) expect(text.includes(id), `${where} shows ${account}'s ${id} to ${who}`).toBe(false)
    }
    expect(scanned).toBe(responses.length)
  })
})

describe('logs', () => {
  it('no log line carries the signing secret, the admin token, an API key or the storage token', async () => {
    // Make sure the suite logged the interesting things: a failing job and a refused worker call, here once more.
    const failed = (await submit({ kind: 'failing', input: {} })).json().jobId
    await follow(failed)
    const body = JSON.stringify({ jobId: failed })
    const worker = env.host.routes.find((r) => r.background)!
    const refused = await worker.handler(new Request(`${env.host.url}${worker.paths[0]}`, { method: 'POST', body, headers: signWorkerRequest(`${SECRET}-wrong`, body, Date.now()) }), contextFor())
    expect(refused.status).toBe(401)
    await call('/api/admin/jobs', { key: `${ADMIN}-wrong` })
    await call('/api/jobs', { key: `${keyA.slice(0, -1)}Z`, json: { kind: 'summarize', input: { text: keyA } } })
    await env.host.idle()
    expect(logLines.some((l) => l.includes('job failed'))).toBe(true)
    expect(logLines.some((l) => l.includes('worker refused'))).toBe(true)
    expect(logLines.some((l) => l.includes('storage unavailable'))).toBe(true)
    for (const line of logLines) {
      for (const secret of [SECRET, ADMIN, ...apiKeys, env.blobs.token]) expect(line.includes(secret), `log line: ${line.slice(0, 200)}`).toBe(false)
    }
  })
})
