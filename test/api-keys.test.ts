/**
 * API keys that name their account: one read of the account record both
 * authenticates and gives the balance. A key is only as good as its hash in
 * that record: editing the account part of a key, or revoking it, makes it a
 * stranger. Keys of the old format keep working.
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { authenticate, authenticateCaller, createApiKey, hashApiKey, registerApiKey, revokeApiKey } from '../lib/accounts/api-keys.ts'
import { MAX_API_KEYS, createAccount, readAccount } from '../lib/credits/index.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import { manualClock } from './support/deps.ts'
import { hookedStore } from './support/hooked-store.ts'

const bearer = (key: string) => `Bearer ${key}`

describe('API keys that name their account', () => {
  it('authenticates with one read, which is the account record the charge reuses', async () => {
    const store = memoryPort()
    const clock = manualClock()
    await createAccount(store, clock, 'acme', 10)
    const key = await createApiKey(store, clock, 'acme', 'laptop')
    expect(key).toMatch(/^djk_acme\.[A-Za-z0-9_-]{43}$/)
    let reads = 0
    const counted = hookedStore(store, (op) => void (op === 'read' && reads++))
    const caller = await authenticateCaller(counted, bearer(key))
    expect(caller.account).toBe('acme')
    expect(caller.accountRead?.record.balance).toBe(10)
    expect(reads).toBe(1)
    // Only the hash is kept, never the key or its secret part.
    const stored = JSON.stringify((await readAccount(store, 'acme'))!.record)
    expect(stored).toContain(hashApiKey(key))
    expect(stored).not.toContain(key.slice(key.indexOf('.') + 1))
  })

  it('a key whose account part was edited, or that was never made, is refused', async () => {
    const store = memoryPort()
    const clock = manualClock()
    const mine = await createApiKey(store, clock, 'mallory')
    await createApiKey(store, clock, 'victim')
    const forged = mine.replace('djk_mallory.', 'djk_victim.')
    await expect(authenticate(store, bearer(forged))).rejects.toMatchObject({ status: 401 })
    await expect(authenticate(store, bearer(`djk_nobody.${randomBytes(32).toString('base64url')}`))).rejects.toMatchObject({ status: 401 })
    expect(await authenticate(store, bearer(mine))).toBe('mallory')
  })

  it('a revoked key is refused; the account\'s other keys still work', async () => {
    const store = memoryPort()
    const clock = manualClock()
    const one = await createApiKey(store, clock, 'acme')
    const two = await createApiKey(store, clock, 'acme')
    await revokeApiKey(store, clock, one)
    await expect(authenticate(store, bearer(one))).rejects.toMatchObject({ status: 401 })
    expect(await authenticate(store, bearer(two))).toBe('acme')
  })

  it('the first key makes the account; creating it afterwards gives it its opening balance', async () => {
    const store = memoryPort()
    const clock = manualClock()
    const key = await createApiKey(store, clock, 'fresh')
    expect((await readAccount(store, 'fresh'))!.record.balance).toBe(0)
    await createAccount(store, clock, 'fresh', 25)
    expect((await authenticateCaller(store, bearer(key))).accountRead?.record.balance).toBe(25)
    await expect(createAccount(store, clock, 'fresh', 25)).rejects.toThrow(/already exists/)
  })

  it(`an account holds at most ${MAX_API_KEYS} keys, so its record stays small`, async () => {
    const store = memoryPort()
    const clock = manualClock()
    for (let i = 0; i < MAX_API_KEYS; i++) await createApiKey(store, clock, 'busy')
    await expect(createApiKey(store, clock, 'busy')).rejects.toThrow(/at most/)
    expect((await store.read('account/busy'))!.data.length).toBeLessThan(16 * 1024)
  })

  it('a key of the old format (no account in it) still works, through its own record', async () => {
    const store = memoryPort()
    const clock = manualClock()
    const legacy = `djk_${randomBytes(32).toString('base64url')}`
    await registerApiKey(store, clock, legacy, 'old-timer', 'made before keys named their account')
    const caller = await authenticateCaller(store, bearer(legacy))
    expect(caller).toEqual({ account: 'old-timer', accountRead: null })
    await revokeApiKey(store, clock, legacy)
    await expect(authenticate(store, bearer(legacy))).rejects.toMatchObject({ status: 401 })
  })
})
