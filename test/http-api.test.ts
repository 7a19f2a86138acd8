/**
 * The HTTP API, through the real function modules served over real HTTP and
 * the real local Blobs server. Every bad-input case also checks that nothing
 * was written.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { systemClock } from '../lib/core/clock.ts'
import { createAccount } from '../lib/credits/index.ts'
import { signWorkerRequest } from '../lib/core/signing.ts'
import type { BlobPort } from '../lib/storage/port.ts'
import worker from '../netlify/functions/worker-background.ts'
import { testApi } from './support/api.ts'
import { contextFor } from './support/functions.ts'
import { failing, slow } from './support/kinds.ts'
import { expectCreditInvariants } from './support/credit-invariants.ts'

const ADMIN = 'test-admin-token-0123456789abcdef'
const api = testApi({ kinds: [slow, failing], adminToken: ADMIN, accounts: { 'acct-a': 1000, 'acct-b': 1000 } })
const { call, follow, contents: everything } = api
let store: BlobPort
let keyA: string
let keyB: string

beforeAll(async () => {
  await api.start()
  store = api.store
  keyA = api.key('acct-a')
  keyB = api.key('acct-b')
})
afterAll(async () => {
  // Every route above touched credits: the ledgers must still explain the balances.
  if (store) for (const account of ['acct-a', 'acct-b', 'acct-poor']) await expectCreditInvariants(store, account)
  await api.stop()
})
beforeEach(() => {
  api.runWorkers = true
})

const text = (seed: string, sentences = 40) =>
  Array.from({ length: sentences }, (_, i) => `${seed} sentence ${i} is about durable jobs on serverless functions.`).join(' ')

const submit = (json: unknown, init: RequestInit & { key?: string } = {}) => call('/api/jobs', { method: 'POST', json, ...init })

describe('POST /api/jobs', () => {
  it('accepts a job: 202, Location, URLs; the worker runs it to done', async () => {
    const res = await submit({ kind: 'summarize', input: { text: text('accept') }, sourceTaskId: 'task-1', clientJobId: 'c-1' })
    expect(res.status).toBe(202)
    const body = await res.json()
    expect(body).toMatchObject({ kind: 'summarize', status: 'queued', statusUrl: `/api/jobs/${body.jobId}`, eventsUrl: `/api/jobs/${body.jobId}/events` })
    expect(res.headers.get('location')).toBe(body.statusUrl)
    expect(new Date(body.createdAt).toISOString()).toBe(body.createdAt)
    const { events } = await follow(body.jobId)
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1))
    expect(events.at(-1)?.type).toBe('done')
    expect(events.at(-1)?.data.result.title).toBeTypeOf('string')
    const status = await (await call(body.statusUrl)).json()
    expect(status).toMatchObject({ status: 'complete', sourceTaskId: 'task-1', clientJobId: 'c-1', error: null })
    expect(status.result.summary).toBeTypeOf('string')
  })

  it('a double submit of the same document gets 409 naming the running job', async () => {
    api.runWorkers = false // keep the first one live
    const doc = { kind: 'summarize', input: { text: text('double') } }
    const first = await (await submit(doc)).json()
    const second = await submit(doc)
    expect(second.status).toBe(409)
    const body = await second.json()
    expect(body.error.code).toBe('resource_locked')
    expect(body.holder).toMatchObject({ jobId: first.jobId, statusUrl: first.statusUrl, eventsUrl: first.eventsUrl })
    expect(Date.parse(body.holder.expiresAt)).toBeGreaterThan(Date.now())
    // the same text from another account is another resource
    expect((await submit(doc, { key: keyB })).status).toBe(202)
  })

  it('Idempotency-Key replays the job it made: 200 and Idempotent-Replayed, and one job only', async () => {
    const doc = { kind: 'summarize', input: { text: text('idem') } }
    const headers = { 'idempotency-key': 'order-77' }
    const first = await submit(doc, { headers })
    expect(first.status).toBe(202)
    const { jobId } = await first.json()
    const again = await submit(doc, { headers })
    expect(again.status).toBe(200)
    expect(again.headers.get('idempotent-replayed')).toBe('true')
    expect((await again.json()).jobId).toBe(jobId)
    const reused = await submit({ ...doc, input: { text: text('other') } }, { headers })
    expect(reused.status).toBe(422)
    expect((await reused.json()).error.code).toBe('idempotency_key_reused')
    // keys are per account
    expect((await submit(doc, { key: keyB, headers })).status).toBe(202)
  })

  describe('bad input answers 4xx with the error envelope and writes nothing', () => {
    const cases: [string, () => Promise<Response>, number, string][] = [
      ['no key', () => submit({ kind: 'summarize', input: { text: 'x' } }, { key: null as unknown as string }), 401, 'unauthorized'],
      ['unknown key', () => submit({ kind: 'summarize', input: { text: 'x' } }, { key: 'djk_' + 'A'.repeat(43) }), 401, 'unauthorized'],
      ['malformed key', () => submit({ kind: 'summarize', input: { text: 'x' } }, { key: 'nonsense' }), 401, 'unauthorized'],
      ['bad JSON', () => call('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"kind":' }), 400, 'invalid_request'],
      ['not JSON', () => call('/api/jobs', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' }), 415, 'unsupported_media_type'],
      ['no content type', () => call('/api/jobs', { method: 'POST', body: '{}' }), 415, 'unsupported_media_type'],
      ['body not an object', () => submit([1, 2, 3]), 400, 'invalid_request'],
      ['missing kind', () => submit({ input: {} }), 400, 'invalid_request'],
      ['unknown kind', () => submit({ kind: 'teleport', input: {} }), 400, 'unknown_kind'],
      ['unknown field', () => submit({ kind: 'summarize', input: { text: 'x' }, extra: 1 }), 400, 'invalid_request'],
      ['schema failure', () => submit({ kind: 'summarize', input: { text: 42 } }), 400, 'invalid_request'],
      ['empty text', () => submit({ kind: 'summarize', input: { text: '   ' } }), 400, 'invalid_request'],
      ['text too long', () => submit({ kind: 'summarize', input: { text: 'a'.repeat(2_000_001) } }), 400, 'invalid_request'],
      ['bad sourceTaskId', () => submit({ kind: 'summarize', input: { text: 'x' }, sourceTaskId: '../../etc' }), 400, 'invalid_request'],
      ['bad clientJobId', () => submit({ kind: 'summarize', input: { text: 'x' }, clientJobId: '' }), 400, 'invalid_request'],
      ['unsafe lock key part', () => submit({ kind: 'slow', input: { steps: 1, delayMs: 0, resource: '../x' } }), 400, 'invalid_request'],
      ['bad Idempotency-Key', () => submit({ kind: 'summarize', input: { text: 'x' } }, { headers: { 'idempotency-key': 'ä'.repeat(3) } }), 400, 'invalid_request'],
      ['wrong method', () => call('/api/jobs', { method: 'PUT', json: {} }), 405, 'method_not_allowed'],
      ['body too large', () => call('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"kind":"summarize","input":{"text":"${'a'.repeat(4.2 * 1024 * 1024)}"}}` }), 413, 'payload_too_large'],
    ]
    it.each(cases)('%s', async (_name, send, status, code) => {
      await api.idle()
      const before = await everything()
      const res = await send()
      expect(res.status).toBe(status)
      const body = await res.json()
      expect(body.error).toMatchObject({ code, message: expect.any(String) })
      expect(await everything()).toEqual(before)
    })

    it('schema failures name the failing paths', async () => {
      const res = await submit({ kind: 'summarize', input: { text: 42, windowChars: 'many' } })
      const body = await res.json()
      expect(body.issues.map((i: { path: string }) => i.path).sort()).toEqual(['input.text', 'input.windowChars'])
    })
  })
})

describe('GET /api/jobs/:id', () => {
  it('shows the job with an ETag; If-None-Match gives 304; another account or a made-up id gives 404', async () => {
    const { jobId } = await (await submit({ kind: 'summarize', input: { text: text('status') } })).json()
    await follow(jobId)
    const res = await call(`/api/jobs/${jobId}`)
    const etag = res.headers.get('etag')!
    expect(etag).toMatch(/^"/)
    // private: a `?token=` request has no Authorization header, and the body carries signed file links
    expect(res.headers.get('cache-control')).toBe('private, no-cache')
    const job = await res.json()
    for (const field of ['jobId', 'kind', 'status', 'progress', 'result', 'error', 'createdAt', 'startedAt', 'updatedAt', 'finishedAt', 'lastSeq', 'eventsUrl', 'sourceTaskId', 'clientJobId']) {
      expect(job).toHaveProperty(field)
    }
    expect((await call(`/api/jobs/${jobId}`, { headers: { 'if-none-match': etag } })).status).toBe(304)
    const other = await call(`/api/jobs/${jobId}`, { key: keyB })
    expect(other.status).toBe(404)
    const missing = await call(`/api/jobs/job_${'0'.repeat(8)}${'a'.repeat(32)}`)
    expect(missing.status).toBe(404)
    expect(await other.json()).toEqual(await missing.json()) // indistinguishable
    expect((await call('/api/jobs/..%2F..%2Fetc')).status).toBe(404)
    expect((await call(`/api/jobs/${jobId}`, { key: null })).status).toBe(401)
  })
})

describe('GET /api/jobs/:id/events', () => {
  it('replays from 0, pages with limit and cursor, and refuses bad cursors', async () => {
    const { jobId } = await (await submit({ kind: 'slow', input: { steps: 25, delayMs: 0 } })).json()
    const { events: all } = await follow(jobId)
    const replay = await (await call(`/api/jobs/${jobId}/events`)).json()
    expect(replay.events).toEqual(all)
    expect(replay.done).toBe(true)
    const page = await (await call(`/api/jobs/${jobId}/events?after=5&limit=3`)).json()
    expect(page.events.map((e: { seq: number }) => e.seq)).toEqual([6, 7, 8])
    expect(page).toMatchObject({ next: 8, done: false, firstSeq: 1 })
    for (const query of ['after=-1', 'after=abc', 'after=1.5', 'limit=0', 'limit=1001', 'wait=21', 'wait=-1', `after=${all.length + 1}`]) {
      const res = await call(`/api/jobs/${jobId}/events?${query}`)
      expect(res.status, query).toBe(400)
      expect((await res.json()).error.code).toMatch(/invalid_request|invalid_cursor/)
    }
    expect((await call(`/api/jobs/${jobId}/events`, { key: keyB })).status).toBe(404)
  })

  it('suggests when to poll again while the job is live, and long-polls', async () => {
    api.runWorkers = false
    const { jobId } = await (await submit({ kind: 'slow', input: { steps: 2, delayMs: 0 } })).json()
    const res = await call(`/api/jobs/${jobId}/events?wait=1`)
    expect(res.headers.get('retry-after')).toBe('0') // the server already waited: ask again at once
    expect(await res.json()).toMatchObject({ status: 'queued', events: [], next: 0, done: false })
    const quick = await call(`/api/jobs/${jobId}/events`)
    expect(quick.headers.get('retry-after')).toBe('1') // a plain poll that found nothing: wait a second
  })
})

describe('POST /api/jobs/:id/cancel', () => {
  it('cancels a queued job at once; a finished job answers 409; another account 404', async () => {
    api.runWorkers = false
    const { jobId } = await (await submit({ kind: 'slow', input: { steps: 2, delayMs: 0 } })).json()
    expect((await call(`/api/jobs/${jobId}/cancel`, { method: 'POST', key: keyB })).status).toBe(404)
    const res = await call(`/api/jobs/${jobId}/cancel`, { method: 'POST' })
    expect(res.status).toBe(200)
    expect((await res.json()).status).toBe('canceled')
    const again = await call(`/api/jobs/${jobId}/cancel`, { method: 'POST' })
    expect(again.status).toBe(409)
    expect((await again.json()).error.code).toBe('job_finished')
    const { events } = await follow(jobId)
    expect(events.map((e) => e.type)).toEqual(['canceled'])
    expect((await call(`/api/jobs/${jobId}/cancel`)).status).toBe(405)
  })

  it('stops a running job through its AbortSignal', async () => {
    const { jobId } = await (await submit({ kind: 'slow', input: { steps: 400, delayMs: 20 } })).json()
    for (let i = 0; i < 100; i++) {
      const job = await (await call(`/api/jobs/${jobId}`)).json()
      if (job.status === 'running') break
      await new Promise((r) => setTimeout(r, 20))
    }
    const res = await call(`/api/jobs/${jobId}/cancel`, { method: 'POST' })
    expect(res.status).toBe(202)
    const { events, feed } = await follow(jobId)
    expect(feed.status).toBe('canceled')
    expect(events.at(-1)?.type).toBe('canceled')
    expect(events.filter((e) => e.type === 'step').length).toBeLessThan(400)
  })
})

describe('failures and the operator view', () => {
  it('clients see only the public error; the admin snapshot has both forms', async () => {
    const { jobId } = await (await submit({ kind: 'failing', input: {} })).json()
    const { events } = await follow(jobId)
    expect(events.at(-1)).toMatchObject({ type: 'error', data: { error: { code: 'internal_error' } } })
    const status = await (await call(`/api/jobs/${jobId}`)).json()
    expect(JSON.stringify(status)).not.toMatch(/10\.0\.3\.7|internal\.example|sk_live/)
    expect((await call('/api/admin/jobs', { key: null })).status).toBe(401)
    const withApiKey = await call('/api/admin/jobs', { key: keyA })
    expect(withApiKey.status).toBe(401)
    const refused = (await withApiKey.json()).error
    expect(refused.code).toBe('unauthorized')
    expect(refused.message).toContain('ADMIN_TOKEN')
    expect(refused.message).not.toContain('valid API key')
    const admin = await (await call('/api/admin/jobs?limit=100', { key: null, headers: { authorization: `Bearer ${ADMIN}` } })).json()
    const row = admin.jobs.find((j: { jobId: string }) => j.jobId === jobId)
    expect(row.error.code).toBe('internal_error')
    expect(row.error_internal).toContain('10.0.3.7')
    expect(row.hasResult).toBe(false)
    expect(Array.isArray(admin.locks)).toBe(true)
    expect((await call('/api/admin/jobs?limit=0', { key: null, headers: { authorization: `Bearer ${ADMIN}` } })).status).toBe(400)
  })
})

describe('worker endpoint', () => {
  const workerCall = (body: string, headers: Record<string, string>) =>
    worker(new Request(`${api.url}/.netlify/functions/worker-background`, { method: 'POST', body, headers }), contextFor())

  it('refuses unsigned, wrongly signed, tampered and stale requests', async () => {
    const body = JSON.stringify({ jobId: `job_${'0'.repeat(8)}${'a'.repeat(32)}` })
    expect((await workerCall(body, {})).status).toBe(401)
    expect((await workerCall(body, signWorkerRequest('another-secret-0123456789abcdef-xyz', body, Date.now()))).status).toBe(401)
    expect((await workerCall(body.replace('aaaa', 'aaab'), signWorkerRequest(api.signingSecret, body, Date.now()))).status).toBe(401)
    expect((await workerCall(body, signWorkerRequest(api.signingSecret, body, Date.now() - 6 * 60_000))).status).toBe(401)
    expect((await workerCall(body, signWorkerRequest(api.signingSecret, body, Date.now()))).status).toBe(204)
  })

  it('a replayed, validly signed call does not run a job again', async () => {
    const { jobId } = await (await submit({ kind: 'slow', input: { steps: 3, delayMs: 0 } })).json()
    const { events } = await follow(jobId)
    const body = JSON.stringify({ jobId })
    expect((await workerCall(body, signWorkerRequest(api.signingSecret, body, Date.now()))).status).toBe(204)
    const after = await follow(jobId)
    expect(after.events).toEqual(events)
  })
})

describe('GET /api/account and 402', () => {
  it('each key sees only its own account; a job the balance cannot cover is 402 and writes nothing', async () => {
    const a = await (await call('/api/account')).json()
    const b = await (await call('/api/account', { key: keyB })).json()
    expect(a.account).toBe('acct-a')
    expect(b.account).toBe('acct-b')
    expect(a.balance).toBeLessThan(1000) // acct-a's jobs were charged
    expect(a.ledger[0].type).toMatch(/charge|refund/)
    expect((await call('/api/account', { key: null })).status).toBe(401)
    expect((await call('/api/account', { method: 'POST', json: {} })).status).toBe(405)

    await createAccount(store, systemClock, 'acct-poor', 0)
    const poor = await api.createKey('acct-poor')
    await api.idle()
    const before = await everything()
    const res = await submit({ kind: 'summarize', input: { text: text('poor') } }, { key: poor })
    expect(res.status).toBe(402)
    expect(await res.json()).toMatchObject({ error: { code: 'insufficient_credits' }, balance: 0, cost: 1 })
    expect(await everything()).toEqual(before)
  })
})

describe('reaper function', () => {
  it('runs and reports', async () => {
    const res = await call('/.netlify/functions/reaper', { key: null })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ liveChecked: expect.any(Number), failed: 0 })
  })
})

describe('no response leaks', () => {
  it('no response body contained an internal error, a stack, a secret or another account', async () => {
    await api.idle()
    expect(api.responses.length).toBeGreaterThan(30)
    const accounts = new Map([[`Bearer ${keyA}`, 'acct-a'], [`Bearer ${keyB}`, 'acct-b']])
    for (const { authorization, path, body } of api.responses) {
      expect(body).not.toContain(api.signingSecret)
      expect(body).not.toContain(ADMIN)
      expect(body).not.toContain(keyA)
      expect(body).not.toContain(keyB)
      if (path.startsWith('/api/admin/')) continue // the operator view, behind ADMIN_TOKEN
      expect(body, path).not.toMatch(/10\.0\.3\.7|internal\.example\.com|sk_live|ECONNREFUSED/)
      expect(body, path).not.toMatch(/\\n\s+at |\n\s+at /)
      const caller = accounts.get(authorization ?? '')
      for (const other of ['acct-a', 'acct-b', 'acct-poor']) if (other !== caller) expect(body, path).not.toContain(other)
    }
  })
})
