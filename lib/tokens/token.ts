/**
 * Browser tokens: short-lived, scoped credentials a frontend may hold instead
 * of an API key. A token is `djt_<claims>.<mac>`, both base64url: the claims
 * as JSON, and an HMAC-SHA256 over the claims part as sent, keyed with
 * `purposeKey(signingSecret, 'browser-token')`. Verifying one reads nothing
 * from storage; whether its account revoked its tokens since is checked by the
 * caller against the account record (see `tokens/caller.ts`).
 *
 * Glossary: scope = what a token covers (one job, a source task's jobs, or
 * submitting some kinds); actions = what it may do there; generation = the
 * account's token generation when it was made (revoking bumps it).
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import { purposeKey } from '../core/signing.ts'

export const TOKEN_PREFIX = 'djt_'
export const TOKEN_PURPOSE = 'browser-token'
/** Longest token accepted; checked before any decoding. */
export const MAX_TOKEN_LENGTH = 4096
export const DEFAULT_TOKEN_TTL_SECONDS = 3600
export const MAX_TOKEN_TTL_SECONDS = 24 * 3600
/** Clock difference tolerated between the instance that made a token and the one checking it. */
const ISSUED_AT_SKEW_SECONDS = 60

const ACCOUNT = /^[a-z0-9][a-z0-9_-]{0,62}$/
const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/
const JOB_ID = /^job_[0-9a-z]{8,11}[0-9a-f]{32}$/
const KIND = /^[a-z][a-z0-9_-]{0,39}$/

export const TOKEN_ACTIONS = ['read', 'cancel', 'submit'] as const
export type TokenAction = (typeof TOKEN_ACTIONS)[number]

export const TokenScopeSchema = z.union([
  z.strictObject({ job: z.string().regex(JOB_ID) }),
  z.strictObject({ sourceTaskId: z.string().regex(CLIENT_ID) }),
  // `task`: the one sourceTaskId its jobs get, so a browser cannot file jobs under another user's task.
  z.strictObject({ submit: z.array(z.string().regex(KIND)).min(1).max(50), task: z.string().regex(CLIENT_ID).optional() }),
])
export type TokenScope = z.infer<typeof TokenScopeSchema>

export const TokenClaimsSchema = z.strictObject({
  v: z.literal(1),
  account: z.string().regex(ACCOUNT),
  scope: TokenScopeSchema,
  actions: z.array(z.enum(TOKEN_ACTIONS)).min(1).max(TOKEN_ACTIONS.length),
  /** Issued at and expires at, in Unix seconds. */
  iat: z.number().int().nonnegative(),
  exp: z.number().int().positive(),
  /** The account's token generation when made: a revocation bumps it, and older tokens stop working. */
  gen: z.number().int().nonnegative(),
  /** Which API key made it (the first 24 hex digits of its SHA-256): revoking the key ends its tokens. Absent for old-format keys. */
  kid: z.string().regex(/^[0-9a-f]{24}$/).optional(),
  /** A random id: the Idempotency-Keys a token submits with are its own, not shared with other tokens of the account. */
  jti: z.string().regex(/^[0-9a-f]{24}$/).optional(),
})
export type TokenClaims = z.infer<typeof TokenClaimsSchema>

export type TokenCheck = { valid: true; claims: TokenClaims } | { valid: false; reason: 'malformed' | 'mismatch' | 'expired' }

const keyCache = new Map<string, Buffer>()

/** The key tokens are signed with, derived once per secret. */
export function tokenKey(signingSecret: string): Buffer {
  let key = keyCache.get(signingSecret)
  if (!key) {
    key = purposeKey(signingSecret, TOKEN_PURPOSE)
    keyCache.clear() // one secret per deploy; never let this grow
    keyCache.set(signingSecret, key)
  }
  return key
}

const mac = (key: Buffer, payload: string) => createHmac('sha256', key).update(payload).digest()

export function signToken(key: Buffer, claims: TokenClaims): string {
  const payload = Buffer.from(JSON.stringify(TokenClaimsSchema.parse(claims))).toString('base64url')
  return `${TOKEN_PREFIX}${payload}.${mac(key, payload).toString('base64url')}`
}

/** Looks like a token (not an API key), without checking it. */
export const isTokenShaped = (credential: string) => credential.startsWith(TOKEN_PREFIX)

/**
 * Checks a token's signature and expiry, in memory. The MAC is compared in
 * constant time before the claims are even decoded, so a forged token costs
 * one HMAC and reveals nothing.
 */
export function verifyToken(key: Buffer, token: string, nowMs: number): TokenCheck {
  if (token.length > MAX_TOKEN_LENGTH || !token.startsWith(TOKEN_PREFIX)) return { valid: false, reason: 'malformed' }
  const match = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})$/.exec(token.slice(TOKEN_PREFIX.length))
  if (!match) return { valid: false, reason: 'malformed' }
  const [, payload, signature] = match as unknown as [string, string, string]
  // Compared as text: decoding would ignore the last character's spare bits, so two strings would pass.
  const given = Buffer.from(signature)
  const expected = Buffer.from(mac(key, payload).toString('base64url'))
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { valid: false, reason: 'mismatch' }
  let claims: TokenClaims
  try {
    claims = TokenClaimsSchema.parse(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')))
  } catch {
    // Signed by us but not in a shape this version reads.
    return { valid: false, reason: 'malformed' }
  }
  const now = Math.floor(nowMs / 1000)
  if (claims.exp <= now || claims.iat > now + ISSUED_AT_SKEW_SECONDS) return { valid: false, reason: 'expired' }
  return { valid: true, claims }
}
