/**
 * API keys. A key is `djk_<account>.<256 random bits>`: it names its account,
 * and the account record (`account/<name>`, see credits/ledger.ts) keeps the
 * SHA-256 of each of its keys, never a key. So one read both authenticates a
 * caller and gives the balance a charged submit is decided on. The key itself
 * is shown once, when it is made.
 *
 * Keys made before this layout (`djk_<43 characters>`, no account in them)
 * still work through their own record, `apikey/<sha256>`: one more read when
 * the request also needs the account.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Clock } from '../core/clock.ts'
import { ApiError, unauthorized } from '../core/errors.ts'
import { parseRecord } from '../core/records.ts'
import { ApiKeyRecordSchema } from '../core/types.ts'
import { type StoredAccount, changeApiKeys, readAccount } from '../credits/index.ts'
import { keys, safePart } from '../storage/keys.ts'
import type { BlobPort } from '../storage/port.ts'

const KEY_PREFIX = 'djk_'
const ACCOUNT = '[a-z0-9][a-z0-9_-]{0,62}'
const SECRET = '[A-Za-z0-9_-]{43}'
/** A key that names its account. */
const KEY_PATTERN = new RegExp(`^${KEY_PREFIX}(${ACCOUNT})\\.(${SECRET})$`)
/** A key made before keys named their account. */
const LEGACY_KEY_PATTERN = new RegExp(`^${KEY_PREFIX}${SECRET}$`)

export const hashApiKey = (apiKey: string) => createHash('sha256').update(apiKey).digest('hex')

export function validAccountName(account: string) {
  return new RegExp(`^${ACCOUNT}$`).test(account)
}

/** Makes a new key for `account` (made too if it does not exist yet); returns it in plain text, the only time it exists. */
export async function createApiKey(store: BlobPort, clock: Clock, account: string, label = 'default') {
  if (!validAccountName(account)) throw new Error('account names are 1-63 characters of a-z 0-9 _ - (starting with a letter or digit)')
  const apiKey = `${KEY_PREFIX}${account}.${randomBytes(32).toString('base64url')}`
  await changeApiKeys(store, clock, account, hashApiKey(apiKey), { label: label.slice(0, 100), createdAt: clock.now() })
  return apiKey
}

/** Stores a key the caller already has (the local development key), in either format. */
export async function registerApiKey(store: BlobPort, clock: Clock, apiKey: string, account: string, label: string) {
  if (!validAccountName(account)) throw new Error('not a valid account')
  const named = KEY_PATTERN.exec(apiKey)
  if (named) {
    if (named[1] !== account) throw new Error('the key names another account')
    return changeApiKeys(store, clock, account, hashApiKey(apiKey), { label, createdAt: clock.now() })
  }
  if (!LEGACY_KEY_PATTERN.test(apiKey)) throw new Error('not a valid key')
  const key = keys.apiKey(hashApiKey(apiKey))
  if (await store.read(key)) return
  await store.create(key, JSON.stringify({ account, label, createdAt: clock.now() }))
}

export async function revokeApiKey(store: BlobPort, clock: Clock, apiKey: string) {
  const named = KEY_PATTERN.exec(apiKey)
  if (named) return changeApiKeys(store, clock, named[1]!, hashApiKey(apiKey), null)
  await store.delete(keys.apiKey(hashApiKey(apiKey)))
}

export interface Caller {
  account: string
  /** The account record, when authenticating read it anyway (a key that names its account). */
  accountRead: StoredAccount | null
}

/** Who is behind `Authorization: Bearer <key>`, or a 401; a malformed key is refused before any read. */
export async function authenticateCaller(store: BlobPort, authorization: string | null): Promise<Caller> {
  const apiKey = bearerToken(authorization)
  const named = apiKey ? KEY_PATTERN.exec(apiKey) : null
  if (named) {
    const accountRead = await readAccount(store, named[1]!)
    if (!accountRead || accountRead.record.apiKeys[hashApiKey(apiKey!)] === undefined) throw unauthorized()
    return { account: named[1]!, accountRead }
  }
  if (!apiKey || !LEGACY_KEY_PATTERN.test(apiKey)) throw unauthorized()
  const key = keys.apiKey(hashApiKey(apiKey))
  const blob = await store.read(key)
  if (!blob) throw unauthorized()
  const { account } = parseRecord(key, blob.data, ApiKeyRecordSchema)
  return { account: safePart(account), accountRead: null }
}

/** The account behind `Authorization: Bearer <key>`, or a 401. */
export async function authenticate(store: BlobPort, authorization: string | null): Promise<string> {
  return (await authenticateCaller(store, authorization)).account
}

export function bearerToken(authorization: string | null): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')
  return match?.[1] ?? null
}

/** Constant-time check of the operator token. */
/** Refuses a request without the operator token; the message names that token, not an API key. */
export function requireAdminToken(expected: string | undefined, authorization: string | null): void {
  if (isAdminToken(expected, authorization)) return
  throw new ApiError(401, 'unauthorized', 'Send the operator token (ADMIN_TOKEN) as "Authorization: Bearer <token>"; an API key does not open admin routes.', {
    headers: { 'WWW-Authenticate': 'Bearer' },
  })
}

export function isAdminToken(expected: string | undefined, authorization: string | null): boolean {
  const given = bearerToken(authorization)
  if (!expected || expected.length < 16 || !given) return false
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}
