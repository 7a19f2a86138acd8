/**
 * Browser tokens without HTTP: signing and verifying (no storage), the auth
 * entry's token path (one read of the account record, revocation), and what
 * a scope lets a caller do.
 */
import { describe, expect, it } from 'vitest'
import { createApiKey, revokeApiKey } from '../lib/accounts/api-keys.ts'
import { purposeKey } from '../lib/core/signing.ts'
import { createAccount, readAccount } from '../lib/credits/index.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import type { BlobPort } from '../lib/storage/port.ts'
import { type Caller, authenticateRequest, may, viewerFor } from '../lib/tokens/caller.ts'
import { mintToken } from '../lib/tokens/mint.ts'
import { revokeAccountTokens } from '../lib/tokens/revoke.ts'
import { MAX_TOKEN_LENGTH, type TokenClaims, signToken, tokenKey, verifyToken } from '../lib/tokens/token.ts'
import { sees } from '../lib/tokens/viewer.ts'
import { manualClock } from './support/deps.ts'

const SECRET = 'a-signing-secret-of-at-least-thirty-two-characters'
const key = tokenKey(SECRET)
const NOW = Date.UTC(2026, 11, 1, 12, 0, 0)
const jobA = `job_${'a'.repeat(8)}${'0'.repeat(32)}`
const jobB = `job_${'b'.repeat(8)}${'1'.repeat(32)}`
const claims = (over: Partial<TokenClaims> = {}): TokenClaims => ({
  v: 1,
  account: 'acme',
  scope: { job: jobA },
  actions: ['read'],
  iat: NOW / 1000,
  exp: NOW / 1000 + 600,
  gen: 0,
  ...over,
})

/** Flips one character of a base64url string to another valid one. */
const flip = (text: string, at: number) => text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1)

describe('signing and verifying', () => {
  it('a signed token verifies to its claims, in memory', () => {
    const token = signToken(key, claims())
    expect(token).toMatch(/^djt_[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/)
    expect(verifyToken(key, token, NOW)).toEqual({ valid: true, claims: claims() })
  })

  it('any change to the claims or the signature, or another key, is a mismatch', () => {
    const token = signToken(key, claims())
    const dot = token.indexOf('.')
    for (let at = 4; at < token.length; at += 7) {
      if (at === dot) continue
      expect(verifyToken(key, flip(token, at), NOW).valid, `flipped ${at}`).toBe(false)
    }
    // Claims re-encoded with more rights but the old signature.
    const [, signature] = token.split('.')
    const widened = Buffer.from(JSON.stringify(claims({ actions: ['read', 'cancel'] }))).toString('base64url')
    expect(verifyToken(key, `djt_${widened}.${signature}`, NOW)).toEqual({ valid: false, reason: 'mismatch' })
    // The signature's last character carries two spare bits: another character with the same bytes is refused too.
    const spare = Array.from({ length: 64 }, (_, i) => signToken(key, claims({ exp: NOW / 1000 + 600 + i }))).find((t) => 'AEIMQUYcgkosw048'.includes(t.at(-1)!))!
    expect(verifyToken(key, spare, NOW).valid).toBe(true)
    expect(Buffer.from(spare.slice(-43), 'base64url')).toEqual(Buffer.from(spare.slice(-43, -1) + String.fromCharCode(spare.at(-1)!.charCodeAt(0) + 1), 'base64url'))
    expect(verifyToken(key, spare.slice(0, -1) + String.fromCharCode(spare.at(-1)!.charCodeAt(0) + 1), NOW).valid).toBe(false)
    expect(verifyToken(tokenKey('another-secret-of-at-least-thirty-two-chars'), token, NOW)).toEqual({ valid: false, reason: 'mismatch' })
    // A key derived for another purpose (asset links) from the same secret does not verify it either.
    expect(verifyToken(purposeKey(SECRET, 'asset-link'), token, NOW)).toEqual({ valid: false, reason: 'mismatch' })
  })

  it('expires at exp, and a token from the future is refused', () => {
    const token = signToken(key, claims())
    expect(verifyToken(key, token, NOW + 599_999).valid).toBe(true)
    expect(verifyToken(key, token, NOW + 600_000)).toEqual({ valid: false, reason: 'expired' })
    expect(verifyToken(key, signToken(key, claims({ iat: NOW / 1000 + 3600, exp: NOW / 1000 + 7200 })), NOW)).toEqual({ valid: false, reason: 'expired' })
  })

  it('junk is malformed before any HMAC: wrong prefix, shape, length, or signed claims of another shape', () => {
    for (const junk of ['', 'djt_', 'djt_.', 'djk_acme.abc', `djt_${'a'.repeat(MAX_TOKEN_LENGTH)}.${'b'.repeat(43)}`, 'djt_abc.def', 'djt_a b.c', 'djt_abc.d€f']) {
      expect(verifyToken(key, junk, NOW)).toMatchObject({ valid: false, reason: 'malformed' })
    }
    expect(() => signToken(key, { ...claims(), scope: { job: 'job_nope' } } as TokenClaims)).toThrow()
  })
})

async function setup(): Promise<{ store: BlobPort; apiKey: string; clock: ReturnType<typeof manualClock> }> {
  const store = memoryPort()
  const clock = manualClock(NOW)
  await createAccount(store, clock, 'acme', 10)
  const apiKey = await createApiKey(store, clock, 'acme')
  return { store, apiKey, clock }
}

const counting = (store: BlobPort) => {
  const ops: string[] = []
  const counted: BlobPort = new Proxy(store, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver)
      return typeof value === 'function' ? (...args: unknown[]) => (ops.push(`${String(name)} ${String(args[0])}`), value.apply(target, args)) : value
    },
  })
  return { counted, ops }
}

const request = (credential: string, where: 'header' | 'query' = 'header') =>
  new Request(`http://localhost/api/jobs/${jobA}${where === 'query' ? `?token=${encodeURIComponent(credential)}` : ''}`, {
    headers: where === 'header' ? { authorization: `Bearer ${credential}` } : {},
  })

describe('the auth entry', () => {
  it('a token costs one read (its account record, for revocation), in the header or ?token=; a forged one costs none', async () => {
    const { store, apiKey, clock } = await setup()
    const keyCaller = await authenticateRequest({ store, clock, signingSecret: SECRET }, request(apiKey))
    const { token } = await mintToken({ store, clock, signingSecret: SECRET }, keyCaller, { job: jobA }, ['read'], 600)
    const { counted, ops } = counting(store)
    const deps = { store: counted, clock, signingSecret: SECRET }
    for (const where of ['header', 'query'] as const) {
      ops.length = 0
      const caller = await authenticateRequest(deps, request(token, where))
      expect(caller).toMatchObject({ account: 'acme', token: { scope: { job: jobA }, actions: ['read'] } })
      expect(caller.accountRead?.record.balance).toBe(10)
      expect(ops).toEqual(['read account/acme'])
    }
    ops.length = 0
    for (const forged of [flip(token, 10), flip(token, token.length - 3), `${token}x`, 'djt_x.y']) {
      await expect(authenticateRequest(deps, request(forged))).rejects.toMatchObject({ status: 401, code: 'unauthorized' })
      await expect(authenticateRequest(deps, request(forged, 'query'))).rejects.toMatchObject({ status: 401 })
    }
    clock.advance(600_000)
    await expect(authenticateRequest(deps, request(token))).rejects.toMatchObject({ status: 401 })
    expect(ops).toEqual([])
  })

  it('never takes an API key from the query string; the header wins over ?token=', async () => {
    const { store, apiKey, clock } = await setup()
    const deps = { store, clock, signingSecret: SECRET }
    await expect(authenticateRequest(deps, request(apiKey, 'query'))).rejects.toMatchObject({ status: 401 })
    const keyCaller = await authenticateRequest(deps, request(apiKey))
    const { token } = await mintToken(deps, keyCaller, { job: jobA }, ['read'], 600)
    const both = new Request(`http://localhost/api/jobs/${jobA}?token=${token}`, { headers: { authorization: 'Bearer djk_acme.nonsense' } })
    await expect(authenticateRequest(deps, both)).rejects.toMatchObject({ status: 401 })
  })

  it('revoking the account’s tokens ends every token made before, at no extra read; tokens made after work', async () => {
    const { store, apiKey, clock } = await setup()
    const deps = { store, clock, signingSecret: SECRET }
    const keyCaller = await authenticateRequest(deps, request(apiKey))
    const before = await mintToken(deps, keyCaller, { job: jobA }, ['read'], 3600)
    const balance = (await readAccount(store, 'acme'))!.record.balance
    expect(await revokeAccountTokens(store, clock, 'acme')).toBe(1)
    await expect(authenticateRequest(deps, request(before.token))).rejects.toMatchObject({ status: 401 })
    // The key itself, the balance and the ledger are untouched.
    const again = await authenticateRequest(deps, request(apiKey))
    expect(again.accountRead!.record).toMatchObject({ balance, tokenGeneration: 1 })
    const after = await mintToken(deps, again, { job: jobA }, ['read'], 3600)
    expect((await authenticateRequest(deps, request(after.token))).token?.gen).toBe(1)
    await expect(revokeAccountTokens(store, clock, 'nobody')).rejects.toThrow(/no account/)
  })

  it('revoking the API key that minted a token ends the token; another key’s tokens live on', async () => {
    const { store, apiKey, clock } = await setup()
    const other = await createApiKey(store, clock, 'acme', 'other')
    const deps = { store, clock, signingSecret: SECRET }
    const fromKey = await mintToken(deps, await authenticateRequest(deps, request(apiKey)), { job: jobA }, ['read'], 3600)
    const fromOther = await mintToken(deps, await authenticateRequest(deps, request(other)), { job: jobA }, ['read'], 3600)
    await revokeApiKey(store, clock, apiKey)
    await expect(authenticateRequest(deps, request(fromKey.token))).rejects.toMatchObject({ status: 401 })
    expect((await authenticateRequest(deps, request(fromOther.token))).account).toBe('acme')
  })
})

describe('what a scope allows', () => {
  const caller = (scope: TokenClaims['scope'], actions: TokenClaims['actions']): Caller => ({
    account: 'acme',
    accountRead: null,
    keyId: null,
    token: claims({ scope, actions }),
  })
  const job = (jobId: string, sourceTaskId: string | null = null, account = 'acme') => ({ account, jobId, sourceTaskId })

  it('a job token reads that job only, and cancels only with the cancel action', () => {
    const reader = caller({ job: jobA }, ['read'])
    expect(may(reader, 'read', job(jobA))).toBe(true)
    expect(may(reader, 'read', job(jobB))).toBe(false)
    expect(may(reader, 'read', job(jobA, null, 'other'))).toBe(false)
    expect(may(reader, 'cancel', job(jobA))).toBe(false)
    expect(may(reader, 'submit', { kind: 'summarize' })).toBe(false)
    expect(may(caller({ job: jobA }, ['read', 'cancel']), 'cancel', job(jobA))).toBe(true)
    // Refused before any read: the 404 of a missing job.
    expect(() => viewerFor(reader, 'read', { jobId: jobB })).toThrow(expect.objectContaining({ status: 404 }))
    expect(() => viewerFor(reader, 'cancel', { jobId: jobA })).toThrow(expect.objectContaining({ status: 404 }))
    expect(sees(viewerFor(reader, 'read', { jobId: jobA }), job(jobA))).toBe(true)
    // A job record carries its kind too: the viewer judges it as a job, not as something to submit.
    const record = { ...job(jobA), kind: 'summarize', status: 'running' }
    expect(sees(viewerFor(reader, 'read', { jobId: jobA }), record)).toBe(true)
  })

  it('a source-task token covers the jobs and files of that task; a submit token submits its kinds and reads nothing', () => {
    const task = caller({ sourceTaskId: 'task-1' }, ['read'])
    expect(sees(viewerFor(task, 'read'), job(jobA, 'task-1'))).toBe(true)
    expect(sees(viewerFor(task, 'read'), job(jobB, 'task-2'))).toBe(false)
    expect(sees(viewerFor(task, 'read'), job(jobB, null))).toBe(false)
    const submitter = caller({ submit: ['render'] }, ['submit'])
    expect(may(submitter, 'submit', { kind: 'render' })).toBe(true)
    expect(may(submitter, 'submit', { kind: 'summarize' })).toBe(false)
    expect(may(submitter, 'read', job(jobA))).toBe(false)
    expect(() => viewerFor(submitter, 'read', { jobId: jobA })).toThrow(expect.objectContaining({ status: 404 }))
    const keyCaller: Caller = { account: 'acme', accountRead: null, keyId: null, token: null }
    expect(may(keyCaller, 'read', job(jobA))).toBe(true)
    expect(may(keyCaller, 'submit', { kind: 'anything' })).toBe(true)
    expect(may(keyCaller, 'read', job(jobA, null, 'other'))).toBe(false)
    expect(viewerFor(keyCaller, 'cancel', { jobId: jobA })).toBe('acme')
  })
})
