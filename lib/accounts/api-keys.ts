/**
 * API keys: a key maps to an account. Only a SHA-256 of the key is stored
 * (keys are 256 random bits, so a fast hash is enough); the key itself is
 * shown once, when it is made.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Clock } from '../core/clock.ts'
import { unauthorized } from '../core/errors.ts'
import { keys, safePart } from '../storage/keys.ts'
import type { BlobPort } from '../storage/port.ts'
import { ApiKeyRecordSchema } from '../core/types.ts'

const KEY_PREFIX = 'djk_'
const KEY_PATTERN = /^djk_[A-Za-z0-9_-]{43}$/

export const hashApiKey = (apiKey: string) => createHash('sha256').update(apiKey).digest('hex')

export function validAccountName(account: string) {
  return /^[a-z0-9][a-z0-9_-]{0,62}$/.test(account)
}

/** Makes a new key for `account`; returns it in plain text, the only time it exists. */
export async function createApiKey(store: BlobPort, clock: Clock, account: string, label = 'default') {
  if (!validAccountName(account)) throw new Error('account names are 1-63 characters of a-z 0-9 _ - (starting with a letter or digit)')
  const apiKey = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`
  const record = JSON.stringify({ account, label: label.slice(0, 100), createdAt: clock.now() })
  const created = await store.create(keys.apiKey(hashApiKey(apiKey)), record)
  if (!created.ok) throw new Error('key collision; try again')
  return apiKey
}

/** Stores a key the caller already has (the local development key). */
export async function registerApiKey(store: BlobPort, clock: Clock, apiKey: string, account: string, label: string) {
  if (!KEY_PATTERN.test(apiKey) || !validAccountName(account)) throw new Error('not a valid key or account')
  const key = keys.apiKey(hashApiKey(apiKey))
  if (await store.read(key)) return
  await store.create(key, JSON.stringify({ account, label, createdAt: clock.now() }))
}

export async function revokeApiKey(store: BlobPort, apiKey: string) {
  await store.delete(keys.apiKey(hashApiKey(apiKey)))
}

/** The account behind `Authorization: Bearer <key>`, or a 401. */
export async function authenticate(store: BlobPort, authorization: string | null): Promise<string> {
  const apiKey = bearerToken(authorization)
  if (!apiKey || !KEY_PATTERN.test(apiKey)) throw unauthorized()
  const blob = await store.read(keys.apiKey(hashApiKey(apiKey)))
  if (!blob) throw unauthorized()
  const { account } = ApiKeyRecordSchema.parse(JSON.parse(blob.data))
  return safePart(account)
}

export function bearerToken(authorization: string | null): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')
  return match?.[1] ?? null
}

/** Constant-time check of the operator token. */
export function isAdminToken(expected: string | undefined, authorization: string | null): boolean {
  const given = bearerToken(authorization)
  if (!expected || expected.length < 16 || !given) return false
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}
