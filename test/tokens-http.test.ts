/**
 * Browser tokens through the real function modules and the real local Blobs
 * server: the watch token on submit, POST /api/tokens, submit-scoped tokens,
 * `?token=`, and refusals that look exactly like a bad key (401) or a
 * missing id (404) and write nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ApiError, createClient } from '../lib/client/index.ts'
import { MintedTokenSchema, WatchTokenFieldsSchema } from '../lib/tokens/mint.ts'
import { signToken, tokenKey } from '../lib/tokens/token.ts'
import { testApi } from './support/api.ts'
import { slow } from './support/kinds.ts'

const ADMIN = 'test-admin-token-0123456789abcdef'
const api = testApi({ kinds: [slow], adminToken: ADMIN, accounts: { acme: 100, other: 100 } })
const { call, contents } = api
let keyA: string
let keyB: string
beforeAll(async () => {
  await api.start()
  keyA = api.key('acme')
  keyB = api.key('other')
})
afterAll(() => api.stop())

const quick = { kind: 'slow', input: { steps: 2, delayMs: 0 } }
const submit = async (key: string, json: unknown = quick, headers: Record<string, string> = {}) => {
  const res = await call('/api/jobs', { method: 'POST', key, json, headers })
  return { res, body: await res.json() }
}
const mint = async (json: unknown, key: string | null = keyA) => {
  const res = await call('/api/tokens', { method: 'POST', key, json })
  return { res, body: await res.json() }
}
const missingJob = `job_${'0'.repeat(8)}${'f'.repeat(32)}`
/** A 404 or 401 answer as the caller sees it, to compare byte for byte. */
const answer = async (res: Response) => ({ status: res.status, body: await res.text(), auth: res.headers.get('www-authenticate') })

describe('the watch token on submit', () => {
  it('reads its job’s status, events and assets, by header or ?token=, and nothing else', async () => {
    const { res, body } = await submit(keyA, { ...quick, sourceTaskId: 'task-w' })
    expect(res.status).toBe(202)
    expect(body.watchToken).toMatch(/^djt_/)
    expect(WatchTokenFieldsSchema.parse({ watchToken: body.watchToken, watchTokenExpiresAt: body.watchTokenExpiresAt })).toBeTruthy()
    const expires = Date.parse(body.watchTokenExpiresAt) - Date.now()
    expect(expires).toBeGreaterThan(3500_000)
    expect(expires).toBeLessThanOrEqual(3600_000)
    await api.idle()
    const token = body.watchToken as string
    for (const path of [`/api/jobs/${body.jobId}`, `/api/jobs/${body.jobId}/events`, `/api/jobs/${body.jobId}/assets`]) {
      expect((await call(path, { key: token })).status, path).toBe(200)
      expect((await call(`${path}?token=${token}`, { key: null })).status, `${path}?token=`).toBe(200)
    }
    const status = await (await call(`/api/jobs/${body.jobId}`, { key: token })).json()
    expect(status).toMatchObject({ jobId: body.jobId, status: 'complete' })

    // Another job of the same account, and a job of another account: exactly like an id that exists nowhere.
    const sibling = (await submit(keyA, { ...quick, sourceTaskId: 'task-w' })).body.jobId
    const foreign = (await submit(keyB)).body.jobId
    for (const jobId of [sibling, foreign]) {
      for (const suffix of ['', '/events', '/assets']) {
        const missing = await answer(await call(`/api/jobs/${missingJob}${suffix}`, { key: token }))
        expect(await answer(await call(`/api/jobs/${jobId}${suffix}`, { key: token }))).toEqual(missing)
        expect(missing.status).toBe(404)
      }
    }
    // It cannot cancel (the 404 of a missing id), list its task, submit, mint or read the account (403).
    expect(await answer(await call(`/api/jobs/${sibling}/cancel`, { method: 'POST', key: token }))).toEqual(
      await answer(await call(`/api/jobs/${missingJob}/cancel`, { method: 'POST', key: token })),
    )
    expect((await call(`/api/jobs/${body.jobId}/cancel`, { method: 'POST', key: token })).status).toBe(404)
    expect(await (await call('/api/assets?sourceTaskId=task-w', { key: token })).json()).toEqual({ sourceTaskId: 'task-w', assets: [] })
    await api.idle() // the sibling and foreign jobs are done writing
    const before = await contents()
    const refused = await submit(token)
    expect(refused.res.status).toBe(403)
    expect(refused.body.error.code).toBe('token_scope')
    expect((await mint({ scope: { job: body.jobId } }, token)).res.status).toBe(403)
    expect((await call('/api/account', { key: token })).status).toBe(403)
    expect(await contents()).toEqual(before)
    await api.idle()
  })

  it('the Idempotency-Key replay (200) carries a watch token too', async () => {
    const first = await submit(keyA, quick, { 'idempotency-key': 'watch-replay-1' })
    const again = await submit(keyA, quick, { 'idempotency-key': 'watch-replay-1' })
    expect(again.res.status).toBe(200)
    expect(again.body.jobId).toBe(first.body.jobId)
    expect(again.body.watchToken).toMatch(/^djt_/)
    expect(Date.parse(again.body.watchTokenExpiresAt)).toBeGreaterThan(Date.now())
    expect((await call(`/api/jobs/${again.body.jobId}`, { key: again.body.watchToken })).status).toBe(200)
    await api.idle()
  })
})

describe('POST /api/tokens', () => {
  it('mints a token of the asked scope, actions and lifetime (1 h by default, at most 24 h)', async () => {
    const job = (await submit(keyA, { kind: 'slow', input: { steps: 1, delayMs: 0 } })).body.jobId
    await api.idle()
    const { res, body } = await mint({ scope: { job } })
    expect(res.status).toBe(201)
    expect(body).toMatchObject({ account: 'acme', scope: { job }, actions: ['read'] })
    expect(MintedTokenSchema.parse(body)).toEqual(body) // the schema the API documents, exactly
    expect(Date.parse(body.expiresAt) - Date.now()).toBeGreaterThan(3500_000)
    const day = await mint({ scope: { job }, actions: ['cancel', 'read'], ttlSeconds: 86_400 })
    expect(day.body.actions).toEqual(['read', 'cancel'])
    expect(Date.parse(day.body.expiresAt) - Date.now()).toBeGreaterThan(86_300_000)
    expect((await call(`/api/jobs/${job}`, { key: day.body.token })).status).toBe(200)
  })

  it('refuses bad requests with a 400 envelope and writes nothing; a bad key is 401', async () => {
    const before = await contents()
    const bad: unknown[] = [
      {},
      { scope: {} },
      { scope: { job: 'job_x' } },
      { scope: { job: missingJob, sourceTaskId: 't' } },
      { scope: { sourceTaskId: 'bad id!' } },
      { scope: { submit: [] } },
      { scope: { submit: ['summarize'] }, actions: ['read'] },
      { scope: { job: missingJob }, actions: ['submit'] },
      { scope: { job: missingJob }, actions: ['delete'] },
      { scope: { job: missingJob }, ttlSeconds: 86_401 },
      { scope: { job: missingJob }, ttlSeconds: 0 },
      { scope: { job: missingJob }, ttlSeconds: 1.5 },
      { scope: { job: missingJob }, account: 'other' },
      { scope: { submit: ['no-such-kind'] } },
      [],
      null,
    ]
    for (const json of bad) {
      const { res, body } = await mint(json)
      expect(res.status, JSON.stringify(json)).toBe(400)
      expect(body.error.code, JSON.stringify(json)).toMatch(/^(invalid_request|unknown_kind)$/)
    }
    const notJson = await call('/api/tokens', { method: 'POST', key: keyA, body: 'scope=job', headers: { 'content-type': 'text/plain' } })
    expect(notJson.status).toBe(415)
    expect((await mint({ scope: { job: missingJob } }, 'djk_acme.nonsense')).res.status).toBe(401)
    expect((await mint({ scope: { job: missingJob } }, null)).res.status).toBe(401)
    expect((await call('/api/tokens', { method: 'GET', key: keyA })).status).toBe(405)
    expect(await contents()).toEqual(before)
  })

  it('a token names only its key’s account: another account’s job stays a 404', async () => {
    const foreign = (await submit(keyB)).body.jobId
    const { body } = await mint({ scope: { job: foreign } })
    expect(body.account).toBe('acme')
    expect((await call(`/api/jobs/${foreign}`, { key: body.token })).status).toBe(404)
    await api.idle()
  })
})

describe('submit-scoped and source-task tokens', () => {
  it('a submit token submits its kinds (charged to the account) and gets a watch token; other kinds are 403 and write nothing', async () => {
    const { body: minted } = await mint({ scope: { submit: ['slow'] }, ttlSeconds: 600 })
    expect(minted.actions).toEqual(['submit'])
    const balance = async () => (await (await call('/api/account')).json()).balance
    const start = await balance()
    const { res, body } = await submit(minted.token)
    expect(res.status).toBe(202)
    expect((await call(`/api/jobs/${body.jobId}`, { key: body.watchToken })).status).toBe(200)
    // It cannot read what it submitted itself: that is the watch token's job.
    expect((await call(`/api/jobs/${body.jobId}`, { key: minted.token })).status).toBe(404)
    await api.idle()
    const before = await contents()
    const other = await submit(minted.token, { kind: 'summarize', input: { text: 'Tokens are scoped. Keys stay home.' } })
    expect(other.res.status).toBe(403)
    expect(other.body.error).toMatchObject({ code: 'token_scope', message: expect.stringContaining('"slow"') })
    expect(await contents()).toEqual(before)
    expect(await balance()).toBe(start - (slow.cost ?? 0))
  })

  it('a submit token files its jobs under its own task only, cannot send clientJobId, and its Idempotency-Keys are its own', async () => {
    // Two browsers of one account, each with a submit token; the victim also reads its task with a task token.
    const { body: victim } = await mint({ scope: { submit: ['slow'], task: 'task-victim' } })
    const { body: attacker } = await mint({ scope: { submit: ['slow'] } })
    const { body: attackerBound } = await mint({ scope: { submit: ['slow'], task: 'task-attacker' } })
    const { body: victimReader } = await mint({ scope: { sourceTaskId: 'task-victim' } })
    await api.idle()
    const before = await contents()
    for (const token of [attacker.token, attackerBound.token]) {
      const planted = await submit(token, { ...quick, sourceTaskId: 'task-victim' })
      expect(planted.res.status).toBe(403)
      expect(planted.body.error.code).toBe('token_scope')
      const charged = await submit(token, { ...quick, clientJobId: 'client-1' })
      expect(charged.res.status).toBe(403)
    }
    expect(await contents()).toEqual(before)

    // A bound task is filled in; the victim's task token sees the victim's job and no other.
    const own = await submit(victim.token, quick, { 'idempotency-key': 'shared-key' })
    expect(own.res.status).toBe(202)
    expect(await (await call(`/api/jobs/${own.body.jobId}`, { key: victimReader.token })).json()).toMatchObject({ sourceTaskId: 'task-victim' })
    const other = await submit(attackerBound.token, quick)
    expect((await call(`/api/jobs/${other.body.jobId}`, { key: victimReader.token })).status).toBe(404)

    // The same Idempotency-Key and body from another token is another job, with no watch token for the first.
    const again = await submit(attacker.token, quick, { 'idempotency-key': 'shared-key' })
    expect(again.res.status).toBe(202)
    expect(again.body.jobId).not.toBe(own.body.jobId)
    // From the same token it is the replay.
    const replay = await submit(victim.token, quick, { 'idempotency-key': 'shared-key' })
    expect(replay.res.status).toBe(200)
    expect(replay.body.jobId).toBe(own.body.jobId)
    await api.idle()
  })

  it('a source-task token reads and (with cancel) cancels that task’s jobs only', async () => {
    const inTask = (await submit(keyA, { kind: 'slow', input: { steps: 400, delayMs: 20 }, sourceTaskId: 'task-s' })).body.jobId
    const outside = (await submit(keyA, { ...quick, sourceTaskId: 'task-t' })).body.jobId
    const { body: minted } = await mint({ scope: { sourceTaskId: 'task-s' }, actions: ['read', 'cancel'] })
    expect((await call(`/api/jobs/${inTask}`, { key: minted.token })).status).toBe(200)
    expect(await answer(await call(`/api/jobs/${outside}`, { key: minted.token }))).toEqual(await answer(await call(`/api/jobs/${missingJob}`, { key: minted.token })))
    expect((await call(`/api/jobs/${outside}/cancel`, { method: 'POST', key: minted.token })).status).toBe(404)
    const canceled = await call(`/api/jobs/${inTask}/cancel`, { method: 'POST', key: minted.token })
    expect([200, 202]).toContain(canceled.status)
    await api.idle()
    expect((await (await call(`/api/jobs/${inTask}`, { key: minted.token })).json()).status).toBe('canceled')
    expect((await (await call(`/api/jobs/${outside}`)).json()).status).toBe('complete')
  })
})

describe('expired, forged and revoked tokens', () => {
  it('get the 401 of a bad key, with no storage operation for a forged or expired one', async () => {
    const { body: job } = await submit(keyA)
    await api.idle()
    const key = tokenKey(api.signingSecret)
    const now = Math.floor(Date.now() / 1000)
    const expired = signToken(key, { v: 1, account: 'acme', scope: { job: job.jobId }, actions: ['read'], iat: now - 7200, exp: now - 1, gen: 0 })
    const otherSecret = signToken(tokenKey('x'.repeat(40)), { v: 1, account: 'acme', scope: { job: job.jobId }, actions: ['read'], iat: now, exp: now + 60, gen: 0 })
    const tampered = job.watchToken.slice(0, 10) + (job.watchToken[10] === 'A' ? 'B' : 'A') + job.watchToken.slice(11)
    const badKey = await answer(await call(`/api/jobs/${job.jobId}`, { key: 'djk_acme.nonsense' }))
    expect(badKey.status).toBe(401)
    for (const token of [expired, otherSecret, tampered, `${job.watchToken}x`]) {
      const ops = { ...api.blobs.ops }
      expect(await answer(await call(`/api/jobs/${job.jobId}`, { key: token }))).toEqual(badKey)
      expect(await answer(await call(`/api/jobs/${job.jobId}?token=${encodeURIComponent(token)}`, { key: null }))).toEqual(badKey)
      expect(api.blobs.ops).toEqual(ops)
    }
    // An API key is never read from the query string.
    expect((await call(`/api/jobs/${job.jobId}?token=${keyA}`, { key: null })).status).toBe(401)
  })

  it('the operator revokes every token of an account at once; its keys keep working', async () => {
    const { body: job } = await submit(keyA)
    await api.idle()
    const { body: minted } = await mint({ scope: { job: job.jobId } })
    const { body: otherJob } = await submit(keyB)
    await api.idle()
    const revoke = (account: string, key: string | null = ADMIN) => call(`/api/admin/accounts/${account}/revoke-tokens`, { method: 'POST', key })
    expect((await revoke('acme', keyA)).status).toBe(401)
    expect((await revoke('acme', job.watchToken)).status).toBe(401)
    expect((await revoke('nobody')).status).toBe(404)
    expect((await revoke('Bad Name!')).status).toBe(404)
    expect((await call('/api/admin/accounts/acme/revoke-tokens', { method: 'GET', key: ADMIN })).status).toBe(405)
    const res = await revoke('acme')
    expect(res.status).toBe(200)
    expect((await res.json()).account).toBe('acme')
    for (const token of [minted.token, job.watchToken]) expect((await call(`/api/jobs/${job.jobId}`, { key: token })).status).toBe(401)
    expect((await call(`/api/jobs/${job.jobId}`)).status).toBe(200)
    expect((await call(`/api/jobs/${otherJob.jobId}`, { key: otherJob.watchToken })).status).toBe(200)
    const fresh = await mint({ scope: { job: job.jobId } })
    expect((await call(`/api/jobs/${job.jobId}`, { key: fresh.body.token })).status).toBe(200)
  })
})

describe('the client with a token', () => {
  it('createClient({ token }) submits with a submit token and watches with the watch token; out of scope is an ApiError', async () => {
    const { body: minted } = await mint({ scope: { submit: ['slow'] } })
    const submitter = createClient({ baseUrl: api.url, token: minted.token })
    const submitted = await submitter.submitJob('slow', { steps: 3, delayMs: 0 })
    expect(submitted.joined).toBe(false)
    if (submitted.joined) return
    expect(submitted.job.watchToken).toMatch(/^djt_/)
    const watcher = createClient({ baseUrl: api.url, token: submitted.job.watchToken })
    const types: string[] = []
    for await (const item of watcher.watchJob(submitted.job.jobId, { waitSeconds: 2 })) if (!item.truncated) types.push(item.type)
    expect(types.at(-1)).toBe('done')
    expect((await watcher.getJob(submitted.job.jobId)).status).toBe('complete')
    await expect(watcher.cancelJob(submitted.job.jobId)).rejects.toMatchObject({ status: 404, code: 'not_found' })
    const refused = await submitter.submitJob('summarize', { text: 'Not mine to submit.' }).catch((error: unknown) => error)
    expect(refused).toBeInstanceOf(ApiError)
    expect(refused).toMatchObject({ status: 403, code: 'token_scope' })
    expect(() => createClient({ baseUrl: api.url, token: '' })).toThrow(TypeError)
    expect(() => createClient({ baseUrl: api.url } as never)).toThrow(TypeError)
  })
})
