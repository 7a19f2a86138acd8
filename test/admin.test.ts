/**
 * The operator console's routes over HTTP, through the real function modules
 * and the real local Blobs server: the admin token (and only it), search with
 * filters and paging, job detail, cancel, run a failed job again, grant once per id, the 24 h
 * summary; bad input answers 4xx and writes nothing; storage operations per
 * request counted at the Blobs server.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GrantResultSchema, JobDetailSchema, OverviewSchema, SearchPageSchema, SummarySchema } from '../lib/admin/schemas.ts'
import { readLedger } from '../lib/credits/index.ts'
import { testApi } from './support/api.ts'
import { failing, hanging } from './support/kinds.ts'
import { expectCreditInvariants } from './support/credit-invariants.ts'

const ADMIN = `admin-test-token-${randomBytes(12).toString('hex')}`
let release = () => {}
const gate = new Promise<void>((resolve) => (release = resolve))
// A running job that writes nothing while the tests look (no heartbeat within a test), so "nothing written" holds.
const api = testApi({ kinds: [hanging(gate), failing], adminToken: ADMIN, accounts: { 'ops-a': 100, 'ops-b': 100 }, env: { HEARTBEAT_INTERVAL_SECONDS: '3600' } })
const admin = (path: string, init: Parameters<typeof api.call>[1] = {}) =>
  api.call(path, { key: null, ...init, headers: { authorization: `Bearer ${ADMIN}`, ...(init.headers as Record<string, string>) } })
/** Every 200 of a console route must match the zod schema lib/admin exports for it. */
const answerSchemas: [RegExp, { parse(value: unknown): unknown }][] = [
  [/^\/api\/admin\/search/, SearchPageSchema],
  [/^\/api\/admin\/summary/, SummarySchema],
  [/^\/api\/admin\/overview/, OverviewSchema],
  [/^\/api\/admin\/accounts\/[^/]+\/grants/, GrantResultSchema],
  [/^\/api\/admin\/jobs\/job_[^/]+(\?|$)/, JobDetailSchema],
]
let schemaChecked = 0
const adminJson = async (path: string, init: Parameters<typeof api.call>[1] = {}) => {
  const res = await admin(path, init)
  const body = await res.json()
  const schema = answerSchemas.find(([pattern]) => pattern.test(path))?.[1]
  if (res.status === 200 && schema) {
    schema.parse(body)
    schemaChecked++
  }
  return { status: res.status, body }
}
const grantId = (at = Date.now()) => `grant_${at.toString(36)}${randomBytes(16).toString('hex')}`
const submit = async (account: string, json: unknown) => {
  const res = await api.call('/api/jobs', { method: 'POST', json, key: api.key(account) })
  expect(res.status).toBe(202)
  return (await res.json()).jobId as string
}
const text = (seed: string) => Array.from({ length: 30 }, (_, i) => `${seed} sentence ${i} tells how durable jobs run.`).join(' ')
const ops = () => ({ ...api.blobs.ops })
const writes = (counted: Record<string, number>) => (counted.set ?? 0) + (counted.delete ?? 0)

let summarized: string
let failed: string
let running: string

beforeAll(async () => {
  await api.start()
  summarized = await submit('ops-a', { kind: 'summarize', input: { text: text('alpha') } })
  failed = await submit('ops-b', { kind: 'failing', input: {} })
  await api.follow(summarized, api.key('ops-a'))
  await api.follow(failed, api.key('ops-b'))
  running = await submit('ops-a', { kind: 'hanging', input: { resource: 'long' } })
  // Running: its worker has written its first events and waits for the gate.
  for (let i = 0; i < 100; i++) {
    const job = await (await api.call(`/api/jobs/${running}`, { key: api.key('ops-a') })).json()
    if (job.lastSeq >= 2) break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
})
afterAll(async () => {
  release()
  expect(schemaChecked).toBeGreaterThan(15)
  if (api.store) for (const account of ['ops-a', 'ops-b']) await expectCreditInvariants(api.store, account)
  await api.stop()
})

const routes: [string, string][] = [
  ['GET', '/api/admin/jobs'],
  ['GET', '/api/admin/search'],
  ['GET', '/api/admin/summary'],
  ['GET', '/api/admin/overview'],
  ['GET', `/api/admin/jobs/job_${'0'.repeat(9)}${'a'.repeat(32)}`],
  ['POST', `/api/admin/jobs/job_${'0'.repeat(9)}${'a'.repeat(32)}/cancel`],
  ['POST', `/api/admin/jobs/job_${'0'.repeat(9)}${'a'.repeat(32)}/retry`],
  ['POST', '/api/admin/accounts/ops-a/grants'],
]

describe('admin token', () => {
  it('every console route refuses no token, an API key and a wrong token with 401 naming the admin token, before any storage access', async () => {
    for (const [method, path] of routes) {
      for (const authorization of [null, `Bearer ${api.key('ops-a')}`, `Bearer ${ADMIN}x`]) {
        api.blobs.resetOps()
        const res = await api.call(path, { method, key: null, ...(authorization ? { headers: { authorization } } : {}), ...(method === 'POST' ? { json: {} } : {}) })
        expect(res.status, `${method} ${path}`).toBe(401)
        const body = await res.json()
        expect(body.error.code).toBe('unauthorized')
        expect(body.error.message).toMatch(/admin token/i)
        expect(body.error.message).not.toMatch(/API key/)
        expect(ops(), `${method} ${path}`).toEqual({})
      }
    }
  })
})

describe('GET /api/admin/search', () => {
  it('lists live jobs first, then finished ones newest first, with both error forms', async () => {
    const { status, body } = await adminJson('/api/admin/search')
    expect(status).toBe(200)
    const ids = body.jobs.map((job: { jobId: string }) => job.jobId)
    expect(ids.slice(0, 1)).toEqual([running])
    expect(ids).toEqual(expect.arrayContaining([summarized, failed]))
    const bad = body.jobs.find((job: { jobId: string }) => job.jobId === failed)
    expect(bad).toMatchObject({ status: 'failed', account: 'ops-b', kind: 'failing', error: { code: 'internal_error' } })
    expect(bad.error_internal).toContain('10.0.3.7')
    expect(body.next).toBeNull()
  })

  it('filters by status, kind and account', async () => {
    const only = async (query: string) => (await adminJson(`/api/admin/search?${query}`)).body.jobs.map((job: { jobId: string }) => job.jobId)
    expect(await only('status=failed')).toEqual([failed])
    expect(await only('status=running')).toEqual([running])
    expect(await only('kind=summarize')).toEqual([summarized])
    expect(await only('account=ops-b')).toEqual([failed])
    expect(await only('account=ops-a&status=complete')).toEqual([summarized])
    expect(await only('account=ops-a&kind=failing')).toEqual([])
  })

  it('pages with the cursor until `next` is null, every job once; each page reads at most 2 × limit records', async () => {
    const seen: string[] = []
    let cursor: string | null = null
    for (let page = 0; page < 10; page++) {
      api.blobs.resetOps()
      const { status, body } = await adminJson(`/api/admin/search?limit=1${cursor ? `&cursor=${cursor}` : ''}`)
      expect(status).toBe(200)
      const counted = ops()
      expect(counted.get ?? 0).toBeLessThanOrEqual(2)
      expect(counted.list ?? 0).toBeLessThanOrEqual(3)
      expect(writes(counted)).toBe(0)
      seen.push(...body.jobs.map((job: { jobId: string }) => job.jobId))
      cursor = body.next
      if (!cursor) break
    }
    expect(cursor).toBeNull()
    expect(seen).toEqual([running, ...seen.slice(1)])
    expect(new Set(seen).size).toBe(seen.length)
    expect(seen).toEqual(expect.arrayContaining([summarized, failed]))
  })

  it('bad filters, limits and cursors answer 400 naming the parameter, and write nothing', async () => {
    const before = await api.contents()
    for (const query of ['status=sideways', 'kind=Bad Kind', 'account=../x', 'limit=0', 'limit=101', 'limit=1.5', 'cursor=abc', 'cursor=done.1.x', 'colour=red']) {
      const { status, body } = await adminJson(`/api/admin/search?${query}`)
      expect(status, query).toBe(400)
      expect(body.error.code).toBe('invalid_request')
      expect(body.issues[0].path, query).toMatch(/^query\./)
    }
    expect(await api.contents()).toEqual(before)
  })
})

describe('GET /api/admin/overview', () => {
  it('shows held locks and balances without listing jobs', async () => {
    api.blobs.resetOps()
    const { status, body } = await adminJson('/api/admin/overview')
    expect(status).toBe(200)
    expect(body.locks).toEqual([expect.objectContaining({ resource: 'ops-a:hanging:long', jobId: running, expired: false })])
    expect(body.accounts.map((a: { account: string }) => a.account).sort()).toEqual(['ops-a', 'ops-b'])
    expect(ops().list).toBe(2) // queue/ and account/, never job/
    expect(writes(ops())).toBe(0)
  })
})

describe('GET /api/admin/jobs/:id', () => {
  it('shows state, a page of the timeline, attempts, lock, charge and both error forms', async () => {
    api.blobs.resetOps()
    const { status, body } = await adminJson(`/api/admin/jobs/${summarized}`)
    expect(status).toBe(200)
    expect(ops().get ?? 0).toBeLessThanOrEqual(12)
    expect(body.job).toMatchObject({ jobId: summarized, status: 'complete', account: 'ops-a', creditCharged: 1 })
    const seqs = body.timeline.events.map((event: { seq: number }) => event.seq)
    expect(seqs).toEqual(seqs.map((_: number, i: number) => i + 1))
    expect(body.timeline.events.at(-1).type).toBe('done')
    expect(body.attempts).toEqual([expect.objectContaining({ attempt: 1, outcome: 'complete' })])
    expect(body.lock).toMatchObject({ state: 'released', holder: summarized, heldByThisJob: false })
    expect(body.charge.entries).toEqual([expect.objectContaining({ type: 'charge', data: expect.objectContaining({ jobId: summarized, amount: -1 }) })])
    expect(body.actions).toEqual({ cancel: false, retry: false })

    const bad = (await adminJson(`/api/admin/jobs/${failed}`)).body
    expect(bad.job.error.code).toBe('internal_error')
    expect(bad.job.error_internal).toContain('10.0.3.7')

    const page = (await adminJson(`/api/admin/jobs/${summarized}?after=1&limit=2`)).body
    expect(page.timeline.events.map((event: { seq: number }) => event.seq)).toEqual([2, 3])
    expect(page.timeline).toMatchObject({ next: 3, firstSeq: 1, lastSeq: body.timeline.lastSeq })

    const live = (await adminJson(`/api/admin/jobs/${running}`)).body
    expect(live.timeline.events.map((event: { type: string }) => event.type)).toEqual(['started', 'working'])
    expect(live.lock).toMatchObject({ state: 'held', holder: running, heldByThisJob: true, expired: false })
    expect(live.actions.cancel).toBe(true)
  })

  it('an unknown or malformed id is 404, a bad page 400; nothing is written', async () => {
    const before = await api.contents()
    expect((await admin(`/api/admin/jobs/job_${'0'.repeat(9)}${'b'.repeat(32)}`)).status).toBe(404)
    expect((await admin('/api/admin/jobs/nope')).status).toBe(404)
    for (const query of ['limit=0', 'limit=201', 'after=-1', 'after=x', 'page=2']) expect((await admin(`/api/admin/jobs/${summarized}?${query}`)).status, query).toBe(400)
    expect(await api.contents()).toEqual(before)
  })
})

describe('POST /api/admin/accounts/:account/grants', () => {
  it('grants once per grant id: a double click and a retry add the credits once', async () => {
    const id = grantId()
    const before = (await readLedger(api.store, 'ops-b')).length
    const answers = await Promise.all(
      Array.from({ length: 4 }, () => adminJson('/api/admin/accounts/ops-b/grants', { method: 'POST', json: { grantId: id, amount: 7, reason: 'ticket 12' } })),
    )
    for (const answer of answers) expect(answer.status).toBe(200)
    expect(answers.filter((answer) => !answer.body.replayed)).toHaveLength(1)
    const again = await adminJson('/api/admin/accounts/ops-b/grants', { method: 'POST', json: { grantId: id, amount: 7, reason: 'ticket 12' } })
    expect(again.body).toMatchObject({ replayed: true, entry: { type: 'grant', data: { amount: 7, op: `grant:${id}` } } })
    const ledger = await readLedger(api.store, 'ops-b')
    expect(ledger.length).toBe(before + 1)
    expect(ledger.filter((entry) => entry.data.op === `grant:${id}`)).toHaveLength(1)
    expect(again.body.balance).toBe(ledger.at(-1)!.data.balanceAfter)
  })

  it('refuses bad input, a reused id with another amount, an old id and an unknown account, writing nothing', async () => {
    const used = grantId()
    expect((await admin('/api/admin/accounts/ops-a/grants', { method: 'POST', json: { grantId: used, amount: 3 } })).status).toBe(200)
    const before = await api.contents()
    const cases: [string, unknown, number, string][] = [
      ['ops-a', { grantId: used, amount: 4 }, 422, 'grant_id_reused'],
      ['ops-a', { grantId: grantId(Date.now() - 2 * 3600_000), amount: 1 }, 400, 'invalid_request'],
      ['ops-a', { grantId: 'grant_1', amount: 1 }, 400, 'invalid_request'],
      ['ops-a', { grantId: grantId(), amount: 0 }, 400, 'invalid_request'],
      ['ops-a', { grantId: grantId(), amount: 1.5 }, 400, 'invalid_request'],
      ['ops-a', { grantId: grantId(), amount: 2_000_000 }, 400, 'invalid_request'],
      ['ops-a', { grantId: grantId(), amount: 1, extra: true }, 400, 'invalid_request'],
      ['ops-a', { amount: 1 }, 400, 'invalid_request'],
      ['nobody', { grantId: grantId(), amount: 1 }, 404, 'not_found'],
      ['Bad%20Name', { grantId: grantId(), amount: 1 }, 400, 'invalid_request'],
    ]
    for (const [account, json, status, code] of cases) {
      const answer = await adminJson(`/api/admin/accounts/${account}/grants`, { method: 'POST', json })
      expect(answer.status, JSON.stringify(json)).toBe(status)
      expect(answer.body.error.code).toBe(code)
    }
    expect((await admin('/api/admin/accounts/ops-a/grants', { method: 'POST', body: '{', headers: { 'content-type': 'application/json' } })).status).toBe(400)
    expect((await admin('/api/admin/accounts/ops-a/grants', { method: 'POST', body: 'amount=1', headers: { 'content-type': 'text/plain' } })).status).toBe(415)
    expect((await admin('/api/admin/accounts/ops-a/grants')).status).toBe(405)
    expect(await api.contents()).toEqual(before)
  })
})

describe('POST /api/admin/jobs/:id/cancel', () => {
  it('cancels any account\'s running job; a finished one is 409 and an unknown one 404, writing nothing', async () => {
    const before = await api.contents()
    expect((await adminJson(`/api/admin/jobs/${summarized}/cancel`, { method: 'POST' })).body.error.code).toBe('job_finished')
    expect((await admin(`/api/admin/jobs/job_${'0'.repeat(9)}${'c'.repeat(32)}/cancel`, { method: 'POST' })).status).toBe(404)
    expect(await api.contents()).toEqual(before)

    const { status, body } = await adminJson(`/api/admin/jobs/${running}/cancel`, { method: 'POST' })
    expect(status).toBe(202) // its worker is alive: asked to stop
    expect(body.cancelRequested).toBe(true)
    release()
    const { events } = await api.follow(running, api.key('ops-a'))
    expect(events.at(-1)?.type).toBe('canceled')
    // The terminal event is visible before the worker settles the job and indexes it as finished: ask until it has.
    const canceled = async () => (await adminJson(`/api/admin/search?status=canceled`)).body.jobs.map((job: { jobId: string }) => job.jobId)
    let found: string[] = await canceled()
    for (let tries = 0; found.length === 0 && tries < 50; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      found = await canceled()
    }
    expect(found).toEqual([running])
  })
})

describe('GET /api/admin/summary', () => {
  it('counts finished jobs by status, run time by kind and failure codes from 24 × 4 rollup reads', async () => {
    await api.idle()
    api.blobs.resetOps()
    const { status, body } = await adminJson('/api/admin/summary')
    expect(status).toBe(200)
    expect(ops()).toEqual({ get: 96, list: 2 })
    expect(body).toMatchObject({ hours: 24, reads: 96, unreadable: 0, live: 0 })
    expect(body.counts).toEqual({ complete: 1, failed: 1, canceled: 1 })
    expect(body.failures).toEqual([{ code: 'internal_error', count: 1 }])
    const kinds = Object.fromEntries(body.durations.map((row: { kind: string }) => [row.kind, row]))
    expect(kinds.summarize).toMatchObject({ count: 1 })
    expect(kinds.summarize.p50Ms).toBeGreaterThan(0)
    expect(kinds.summarize.p95Ms).toBeGreaterThanOrEqual(kinds.summarize.p50Ms)
    expect(Object.keys(kinds).sort()).toEqual(['failing', 'hanging', 'summarize'])
  })
})

describe('POST /api/admin/jobs/:id/retry', () => {
  it('runs a failed job again as a new job of its account, once however often it is asked', async () => {
    expect((await adminJson(`/api/admin/jobs/${failed}`)).body.actions).toEqual({ cancel: false, retry: true })
    const first = await adminJson(`/api/admin/jobs/${failed}/retry`, { method: 'POST' })
    expect(first.status).toBe(202)
    expect(first.body).toMatchObject({ retryOf: failed, kind: 'failing' })
    const rerun = first.body.jobId as string
    expect(rerun).not.toBe(failed)
    // A double click (or a retried request) answers with the same new job.
    const again = await adminJson(`/api/admin/jobs/${failed}/retry`, { method: 'POST' })
    expect(again).toMatchObject({ status: 200, body: { jobId: rerun, retryOf: failed } })
    // It belongs to the failed job's account, and ran its input again (and failed the same way).
    const { events } = await api.follow(rerun, api.key('ops-b'))
    expect(events.at(-1)).toMatchObject({ type: 'error', data: { error: { code: 'internal_error' } } })
    await api.idle() // its worker settles it (and keeps its input) after the terminal event
    const detail = (await adminJson(`/api/admin/jobs/${rerun}`)).body
    expect(detail.job).toMatchObject({ account: 'ops-b', kind: 'failing', status: 'failed' })
    expect(detail.actions.retry).toBe(true)
  })

  it('refuses a job that did not fail (409) and an unknown one (404), writing nothing', async () => {
    await api.idle()
    const before = await api.contents()
    const done = await admin(`/api/admin/jobs/${summarized}/retry`, { method: 'POST' })
    expect(done.status).toBe(409)
    expect(await done.json()).toMatchObject({ error: { code: 'job_not_failed' }, status: 'complete' })
    expect((await admin(`/api/admin/jobs/job_${'0'.repeat(9)}${'d'.repeat(32)}/retry`, { method: 'POST' })).status).toBe(404)
    expect((await admin(`/api/admin/jobs/${failed}/retry`, { method: 'GET' })).status).toBe(405)
    expect(await api.contents()).toEqual(before)
  })

  it('a failed job whose input is no longer kept cannot run again: 409 retry_unavailable, and the console offers no retry', async () => {
    const lost = await submit('ops-b', { kind: 'failing', input: { public: true } })
    await api.follow(lost, api.key('ops-b'))
    await api.idle()
    await api.store!.delete(`failed/${lost}`)
    expect((await adminJson(`/api/admin/jobs/${lost}`)).body.actions.retry).toBe(false)
    const before = await api.contents()
    const res = await admin(`/api/admin/jobs/${lost}/retry`, { method: 'POST' })
    expect(res.status).toBe(409)
    expect((await res.json()).error.code).toBe('retry_unavailable')
    expect(await api.contents()).toEqual(before)
  })
})
