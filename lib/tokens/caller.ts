/**
 * The one authentication entry of the /api routes: who is asking, and what
 * they may do. A caller is an API key (anything its account may do) or a
 * browser token (its scope and actions only).
 *
 * Credentials: `Authorization: Bearer <api key or token>`, or `?token=<token>`
 * for what cannot send headers (`EventSource`, `<img src>`). An API key is
 * never taken from the query string, where it would end up in logs and
 * browser history. When both are sent, the header wins.
 *
 * Refusals look like the API's other answers: a bad, expired, tampered or
 * revoked token is the same 401 as a bad key, and a job or file outside a
 * token's scope is the same 404 as an id that exists nowhere.
 */
import { createHash } from 'node:crypto'
import type { Deps } from '../core/deps.ts'
import { ApiError, notFound, unauthorized } from '../core/errors.ts'
import { authenticateCaller, bearerToken, hashApiKey } from '../accounts/api-keys.ts'
import { type StoredAccount, readAccount } from '../credits/index.ts'
import { type TokenAction, type TokenClaims, isTokenShaped, tokenKey, verifyToken } from './token.ts'
import type { Viewer } from './viewer.ts'

export interface Caller {
  account: string
  /** The account record, when authenticating read it: a charged submit then reads it no more. */
  accountRead: StoredAccount | null
  /** The token's claims; null for an API key. */
  token: TokenClaims | null
  /** For an API key that names its account: the first 24 hex digits of its SHA-256, which its tokens carry. */
  keyId: string | null
}

export type AuthDeps = Pick<Deps, 'store' | 'clock' | 'signingSecret'>

/** The credential a request carries: the Authorization header's, else `?token=`. */
export function credentialOf(req: Request): { credential: string | null; fromQuery: boolean } {
  const header = req.headers.get('authorization')
  if (header !== null) return { credential: bearerToken(header), fromQuery: false }
  let query: string | null = null
  try {
    query = new URL(req.url).searchParams.get('token')
  } catch {
    query = null
  }
  return { credential: query, fromQuery: query !== null }
}

/** Who is behind the request, or a 401. A malformed or forged credential is refused before any storage read. */
export async function authenticateRequest(deps: AuthDeps, req: Request): Promise<Caller> {
  const { credential, fromQuery } = credentialOf(req)
  if (credential !== null && isTokenShaped(credential)) return authenticateToken(deps, credential)
  // API keys only in the header.
  if (fromQuery || credential === null) throw unauthorized()
  const caller = await authenticateCaller(deps.store, `Bearer ${credential}`)
  return { ...caller, token: null, keyId: caller.accountRead ? keyIdOf(credential) : null }
}

export const keyIdOf = (apiKey: string) => hashApiKey(apiKey).slice(0, 24)

/**
 * A token: its signature and expiry in memory, then one read of its
 * account's record for revocation (the token generation, and the key that
 * made it still being there). The record is reused by a submit's charge.
 */
export async function authenticateToken(deps: AuthDeps, token: string): Promise<Caller> {
  const check = verifyToken(tokenKey(deps.signingSecret), token, deps.clock.now())
  if (!check.valid) throw unauthorized()
  const { claims } = check
  const accountRead = await readAccount(deps.store, claims.account)
  const generation = accountRead?.record.tokenGeneration ?? 0
  if (claims.gen !== generation) throw unauthorized()
  if (claims.kid !== undefined) {
    const keys = Object.keys(accountRead?.record.apiKeys ?? {})
    if (!keys.some((hash) => hash.startsWith(claims.kid!))) throw unauthorized()
  }
  return { account: claims.account, accountRead, token: claims, keyId: claims.kid ?? null }
}

/** What an action is aimed at: a job or file (by its account, job and source task), or a kind to submit. */
export type Target = { account: string; jobId: string; sourceTaskId: string | null } | { kind: string }

/** Whether `caller` may do `action` on `target`. */
export function may(caller: Caller, action: TokenAction, target: Target): boolean {
  if (!('jobId' in target)) {
    if (action !== 'submit') return false
    const scope = caller.token?.scope
    return caller.token === null || (caller.token.actions.includes('submit') && scope !== undefined && 'submit' in scope && scope.submit.includes(target.kind))
  }
  if (target.account !== caller.account || action === 'submit') return false
  if (caller.token === null) return true
  const { scope, actions } = caller.token
  if (!actions.includes(action)) return false
  if ('job' in scope) return target.jobId === scope.job
  if ('sourceTaskId' in scope) return target.sourceTaskId === scope.sourceTaskId
  return false
}

/**
 * The viewer to read or cancel jobs and files with. A token that cannot do
 * `action` at all, or whose job scope names another job than `jobId`, gets
 * the 404 of a missing id here, before any read.
 */
export function viewerFor(caller: Caller, action: 'read' | 'cancel', options: { jobId?: string; what?: string } = {}): Viewer {
  const { token } = caller
  if (token === null) return caller.account
  const { scope } = token
  const none = notFound(options.what)
  if (!token.actions.includes(action) || 'submit' in scope) throw none
  if ('job' in scope && options.jobId !== undefined && options.jobId !== scope.job) throw none
  // Only the fields a scope speaks of: a job record also has a `kind`, which would read as a submit target.
  return { account: caller.account, covers: ({ jobId, sourceTaskId }) => may(caller, action, { account: caller.account, jobId, sourceTaskId }) }
}

/** Refuses a token where only an API key will do (minting tokens, the account's balance). */
export function requireApiKey(caller: Caller, what: string): void {
  if (caller.token !== null) throw tokenNotAllowed(`A token cannot ${what}; use an API key (from your backend).`)
}

/**
 * Refuses a submit the caller's token does not cover: call it once before
 * reading the body (a token that cannot submit at all) and once with the
 * body's `kind`. A `kind` that is not a string is left to submit's 400.
 */
export function requireSubmit(caller: Caller, kind?: unknown): void {
  if (caller.token === null) return
  const { scope, actions } = caller.token
  const kinds = 'submit' in scope && actions.includes('submit') ? scope.submit : []
  if (kinds.length === 0) throw tokenNotAllowed('This token cannot submit jobs.')
  if (typeof kind === 'string' && !kinds.includes(kind)) {
    throw tokenNotAllowed(`This token may submit only ${kinds.map((k) => `"${k}"`).join(', ')} jobs.`)
  }
}

/**
 * What a token may put in a submit body beyond its kind. Its jobs go under the
 * scope's `task` (filled in when the body names none), never under another
 * source task, so one browser cannot file jobs into another's task scope;
 * `clientJobId` (one charge per id, account-wide) is for API keys, and so is
 * `webhookUrl`: a browser must not choose where the server sends requests
 * (its jobs use the account's default webhook).
 */
export function submitBodyFor(caller: Caller, body: unknown): unknown {
  if (caller.token === null || body === null || typeof body !== 'object' || Array.isArray(body)) return body
  const { scope } = caller.token
  const task = 'submit' in scope ? scope.task : undefined
  const fields = body as { sourceTaskId?: unknown; clientJobId?: unknown; webhookUrl?: unknown }
  if (fields.clientJobId !== undefined) throw tokenNotAllowed('A token cannot send clientJobId: use an Idempotency-Key, which is the token’s own.')
  if (fields.webhookUrl !== undefined) throw tokenNotAllowed('A token cannot send webhookUrl: jobs it submits use the account’s default webhook.')
  if (fields.sourceTaskId !== undefined && fields.sourceTaskId !== task) {
    throw tokenNotAllowed(task ? `This token submits under sourceTaskId "${task}" only.` : 'This token cannot name a sourceTaskId: mint it with scope.task.')
  }
  return task === undefined ? body : { ...body, sourceTaskId: task }
}

/** Where a caller's Idempotency-Keys live: the account's for a key, the token's own for a token. */
export const idempotencyNamespace = (caller: Caller): string | null =>
  caller.token === null ? null : `token:${caller.token.jti ?? createHash('sha256').update(JSON.stringify(caller.token)).digest('hex').slice(0, 24)}`

/** A valid token asked for something its scope does not cover, where there is no id to hide: 403. */
export const tokenNotAllowed = (message: string) => new ApiError(403, 'token_scope', message)
