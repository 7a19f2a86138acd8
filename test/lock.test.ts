import { describe, expect, it } from 'vitest'
import { REAPING_GRACE_MS, acquireLock, peekLock, releaseLock, removeReleasedLock } from '../lib/locks/lock.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import { UnsafeKeyError, resourceKey } from '../lib/storage/keys.ts'
import { useBlobs } from './support/blobs.ts'
import { manualClock } from './support/deps.ts'

const blobs = useBlobs()

const TTL = 16 * 60_000
let n = 0
const stores = [
  ['netlify blobs (local server)', () => blobs.port(`lock-${++n}`)],
  ['memory', () => memoryPort()],
] as const

describe('resourceKey', () => {
  it('joins checked parts canonically', () => {
    expect(resourceKey(['acct', 'summarize', 'abc123'])).toBe('acct:summarize:abc123')
  })
  it.each([[[]], [['']], [['a', '']], [['a/b']], [['..']], [['a..b']], [['-x']], [['x'.repeat(129)]], [['a b']], [['ü']]])(
    'rejects empty or unsafe parts %j',
    (parts) => {
      expect(() => resourceKey(parts as string[])).toThrow(UnsafeKeyError)
    },
  )
})

describe.each(stores)('lock on %s', (_name, make) => {
  it('is taken once; a second job sees the holder', async () => {
    const store = make()
    const clock = manualClock()
    expect(await acquireLock(store, clock, 'r', 'job-a', TTL)).toEqual({ acquired: true, tookOverFrom: null })
    const second = await acquireLock(store, clock, 'r', 'job-b', TTL)
    expect(second).toEqual({ acquired: false, holder: { jobId: 'job-a', acquiredAt: clock.now(), expiresAt: clock.now() + TTL } })
  })

  it('is released only by its holder; a release by another job leaves it alone and says why', async () => {
    const store = make()
    const clock = manualClock()
    await acquireLock(store, clock, 'r', 'job-a', TTL)
    const wrong = await releaseLock(store, clock, 'r', 'job-b')
    expect(wrong).toMatchObject({ released: false, reason: 'held_by_another_job', holder: { jobId: 'job-a' } })
    expect((await peekLock(store, 'r'))?.record).toMatchObject({ state: 'held', jobId: 'job-a' })
    expect(await releaseLock(store, clock, 'r', 'job-a')).toEqual({ released: true })
    expect(await releaseLock(store, clock, 'r', 'job-a')).toEqual({ released: false, reason: 'already_released' })
    expect(await acquireLock(store, clock, 'r', 'job-b', TTL)).toEqual({ acquired: true, tookOverFrom: null })
  })

  it('an expired lock is taken over, and the takeover names the old job', async () => {
    const store = make()
    const clock = manualClock()
    await acquireLock(store, clock, 'r', 'job-a', TTL)
    clock.advance(TTL - 1)
    expect((await acquireLock(store, clock, 'r', 'job-b', TTL)).acquired).toBe(false)
    clock.advance(2)
    expect(await acquireLock(store, clock, 'r', 'job-b', TTL)).toEqual({ acquired: true, tookOverFrom: 'job-a' })
    // the old job's late release finds the new holder and leaves it alone
    expect(await releaseLock(store, clock, 'r', 'job-a')).toMatchObject({ reason: 'held_by_another_job' })
    expect((await peekLock(store, 'r'))?.record).toMatchObject({ state: 'held', jobId: 'job-b' })
  })

  it('peek has no side effects', async () => {
    const store = make()
    const clock = manualClock()
    expect(await peekLock(store, 'r')).toBeNull()
    await acquireLock(store, clock, 'r', 'job-a', TTL)
    const first = await peekLock(store, 'r')
    const second = await peekLock(store, 'r')
    expect(second).toEqual(first)
  })

  it('the reaper removes only long-released locks, and an acquirer waits out its marker', async () => {
    const store = make()
    const clock = manualClock()
    await acquireLock(store, clock, 'r', 'job-a', TTL)
    expect(await removeReleasedLock(store, clock, 'r', 60_000)).toBe(false) // held
    await releaseLock(store, clock, 'r', 'job-a')
    expect(await removeReleasedLock(store, clock, 'r', 60_000)).toBe(false) // too recent
    clock.advance(60_000)
    expect(await removeReleasedLock(store, clock, 'r', 60_000)).toBe(true)
    expect(await peekLock(store, 'r')).toBeNull()
    expect((await acquireLock(store, clock, 'r', 'job-c', TTL)).acquired).toBe(true)
  })

  it('an abandoned reaping marker is taken over after its grace period', async () => {
    const store = make()
    const clock = manualClock()
    await store.create('lock/r', JSON.stringify({ state: 'reaping', since: clock.now() }))
    clock.advance(REAPING_GRACE_MS + 1)
    expect(await acquireLock(store, clock, 'r', 'job-d', TTL)).toEqual({ acquired: true, tookOverFrom: null })
  })
})

describe('lock under concurrency (atomic store)', () => {
  it('50 concurrent acquirers: exactly one wins and every loser names it', async () => {
    for (let trial = 0; trial < 20; trial++) {
      const store = memoryPort()
      const clock = manualClock()
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => acquireLock(store, clock, 'r', `job-${i}`, TTL)),
      )
      const winners = results.flatMap((r, i) => (r.acquired ? [`job-${i}`] : []))
      expect(winners).toHaveLength(1)
      for (const r of results) if (!r.acquired) expect(r.holder.jobId).toBe(winners[0])
    }
  })
})
