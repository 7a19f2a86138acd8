/**
 * The due-time index and the dispatcher that reads it, on the real local
 * Blobs server: what is due is handled once its time has come, nothing is
 * lost when a handler or storage fails, and a run's cost follows what is due.
 */
import { describe, expect, it } from 'vitest'
import type { Deps } from '../lib/core/deps.ts'
import { DUE_MINUTE_MS, type DueEntry, addDue, dueKey, listDueBucket, dueMinute, parseDueKey } from '../lib/schedule/due-index.ts'
import { type DueHandlers, type DueOutcome, runDispatcher } from '../lib/schedule/dispatcher.ts'
import { keys } from '../lib/storage/keys.ts'
import type { BlobPort } from '../lib/storage/port.ts'
import { useBlobs } from './support/blobs.ts'
import { type StoreOp, hookedStore } from './support/hooked-store.ts'
import { manualClock, testDeps } from './support/deps.ts'

const blobs = useBlobs()
let storeNo = 0

function setup(options: { fail?: (op: StoreOp, key: string) => boolean } = {}) {
  const clock = manualClock(Date.UTC(2026, 11, 1, 12, 0, 10))
  const ops: { op: StoreOp; key: string }[] = []
  const inner = blobs.port(`dispatch-${++storeNo}`)
  const store: BlobPort = hookedStore(inner, (op, key) => {
    ops.push({ op, key })
    if (options.fail?.(op, key)) throw new Error(`injected ${op} failure on ${key}`)
  })
  const deps = testDeps(store, { clock })
  const seen: DueEntry[] = []
  let answer: (entry: DueEntry) => DueOutcome | Promise<DueOutcome> = () => ({ done: true })
  const handle = async (_deps: Deps, entry: DueEntry) => {
    seen.push(entry)
    return answer(entry)
  }
  const handlers: DueHandlers = { start: handle, guard: handle }
  return {
    clock, deps, inner, ops, seen, handlers,
    answer: (fn: typeof answer) => (answer = fn),
    remaining: async () => (await inner.list(keys.duePrefix)).keys.sort(),
  }
}

describe('due-time index', () => {
  it('files an entry in the bucket of its minute, under a key that says when, what and which', async () => {
    const { deps, inner } = setup()
    const at = deps.clock.now() + 90_000
    const entry = await addDue(deps.store, at, 'start', 'job_abc')
    expect(entry.key).toBe(dueKey(at, 'start', 'job_abc'))
    expect(parseDueKey(entry.key)).toEqual(entry)
    await addDue(deps.store, at, 'start', 'job_abc') // filing twice is one entry
    expect((await listDueBucket(inner, dueMinute(at))).entries).toEqual([entry])
    expect(await listDueBucket(inner, dueMinute(at) - 1)).toEqual({ entries: [], unknown: [] })
  })

  it('refuses an id that could break out of its key, and a time that is no time', async () => {
    const { deps } = setup()
    await expect(addDue(deps.store, deps.clock.now(), 'start', 'a/b')).rejects.toThrow(/due entry id/)
    await expect(addDue(deps.store, Number.NaN, 'start', 'job')).rejects.toThrow(/due time/)
    await expect(addDue(deps.store, -1, 'start', 'job')).rejects.toThrow(/due time/)
    expect(parseDueKey('due/0000000001/junk')).toBeNull()
  })

  it('files a time between two ms at the next whole ms, never earlier', async () => {
    const { deps } = setup()
    const at = deps.clock.now() + 0.25
    const entry = await addDue(deps.store, at, 'start', 'job_frac')
    expect(entry.at).toBe(deps.clock.now() + 1)
    expect(parseDueKey(entry.key)).toEqual(entry)
  })
})

describe('dispatcher', () => {
  it('handles an entry once its time has come, not before, and removes it after', async () => {
    const t = setup()
    const at = t.clock.now() + 30_000
    await addDue(t.deps.store, at, 'start', 'job_1')
    let report = await runDispatcher(t.deps, t.handlers)
    expect(t.seen).toEqual([])
    expect(report.handled).toBe(0)
    expect(await t.remaining()).toHaveLength(1)

    t.clock.set(at)
    report = await runDispatcher(t.deps, t.handlers)
    expect(t.seen.map((entry) => entry.id)).toEqual(['job_1'])
    expect(report).toMatchObject({ handled: 1, itemsFailed: 0 })
    expect(await t.remaining()).toEqual([])

    await runDispatcher(t.deps, t.handlers)
    expect(t.seen).toHaveLength(1)
  })

  it('finds entries in minutes it never listed, after a long pause, without a cursor', async () => {
    const t = setup()
    const start = t.clock.now()
    for (const [i, offset] of [5, 90, 3 * 3600].entries()) await addDue(t.deps.store, start + offset * 1000, 'start', `job_${i}`)
    t.clock.set(start + 6 * 3600_000)
    const report = await runDispatcher(t.deps, t.handlers)
    expect(t.seen.map((entry) => entry.id)).toEqual(['job_0', 'job_1', 'job_2'])
    expect(report.handled).toBe(3)
    expect(await t.remaining()).toEqual([])
  })

  it('catches an entry written into a minute a previous run already listed', async () => {
    const t = setup()
    await runDispatcher(t.deps, t.handlers) // cursor: this minute
    // A submit's write that landed late: due a few seconds ago, in the minute just listed.
    const late = t.clock.now() - 5_000
    t.clock.advance(DUE_MINUTE_MS)
    await runDispatcher(t.deps, t.handlers)
    await addDue(t.deps.store, late, 'start', 'job_late')
    t.clock.advance(DUE_MINUTE_MS)
    await runDispatcher(t.deps, t.handlers)
    expect(t.seen.map((entry) => entry.id)).toEqual(['job_late'])
  })

  it('files a failing entry again a minute later and goes on with the others', async () => {
    const t = setup()
    const now = t.clock.now()
    await addDue(t.deps.store, now - 1000, 'start', 'job_bad')
    await addDue(t.deps.store, now - 500, 'start', 'job_good')
    t.answer((entry) => {
      if (entry.id === 'job_bad') throw new Error('backend down')
      return { done: true }
    })
    const report = await runDispatcher(t.deps, t.handlers)
    expect(report).toMatchObject({ handled: 1, itemsFailed: 1, deferred: 1 })
    expect((await t.remaining()).map((key) => parseDueKey(key)!.id)).toEqual(['job_bad'])
    expect(parseDueKey((await t.remaining())[0]!)!.at).toBe(now + DUE_MINUTE_MS)

    t.answer(() => ({ done: true }))
    t.clock.advance(DUE_MINUTE_MS)
    await runDispatcher(t.deps, t.handlers)
    expect(t.seen.map((entry) => entry.id)).toEqual(['job_bad', 'job_good', 'job_bad'])
    expect(await t.remaining()).toEqual([])
  })

  it('keeps an entry whose removal failed, and handles it again on the next run', async () => {
    let failDeletes = true
    const t = setup({ fail: (op, key) => failDeletes && op === 'delete' && key.startsWith(keys.duePrefix) })
    await addDue(t.deps.store, t.clock.now() - 1000, 'start', 'job_1')
    const report = await runDispatcher(t.deps, t.handlers)
    expect(report.itemsFailed).toBe(1)
    expect(await t.remaining()).toHaveLength(1)
    failDeletes = false
    t.clock.advance(DUE_MINUTE_MS)
    await runDispatcher(t.deps, t.handlers)
    expect(t.seen.map((entry) => entry.id)).toEqual(['job_1', 'job_1'])
    expect(await t.remaining()).toEqual([])
  })

  it('leaves an entry of a shape it does not know where it is, counted, and handles the others', async () => {
    const t = setup()
    const now = t.clock.now()
    const junk = `${keys.dueFolder(dueMinute(now))}/not-an-entry`
    await t.inner.put(junk, '')
    await addDue(t.deps.store, now - 1000, 'start', 'job_1')
    const report = await runDispatcher(t.deps, t.handlers)
    expect(report).toMatchObject({ handled: 1, unknownEntries: 1 })
    expect(await t.remaining()).toEqual([junk])
  })

  it('files an entry again for the time its handler names', async () => {
    const t = setup()
    const now = t.clock.now()
    await addDue(t.deps.store, now - 1000, 'start', 'job_1')
    t.answer(() => ({ done: false, at: now + 2 * DUE_MINUTE_MS }))
    const report = await runDispatcher(t.deps, t.handlers)
    expect(report).toMatchObject({ handled: 0, deferred: 1, itemsFailed: 0 })
    expect(await t.remaining()).toEqual([dueKey(now + 2 * DUE_MINUTE_MS, 'start', 'job_1')])
  })

  it('takes at most maxEntries per run and leaves the rest for the next, oldest first', async () => {
    const t = setup()
    const now = t.clock.now()
    for (let i = 0; i < 5; i++) await addDue(t.deps.store, now - 3 * DUE_MINUTE_MS + i * 1000, 'start', `job_${i}`)
    const first = await runDispatcher(t.deps, t.handlers, { maxEntries: 3 })
    expect(first).toMatchObject({ handled: 3, unfinished: true })
    await runDispatcher(t.deps, t.handlers, { maxEntries: 3 })
    expect(t.seen.map((entry) => entry.id)).toEqual(['job_0', 'job_1', 'job_2', 'job_3', 'job_4'])
  })

  it('lists three buckets when nothing is due, however much is scheduled later', async () => {
    const t = setup()
    const now = t.clock.now()
    for (let i = 0; i < 40; i++) await addDue(t.deps.store, now + (i + 2) * 3600_000, 'start', `job_${i}`)
    await runDispatcher(t.deps, t.handlers) // first run: no cursor yet
    t.clock.advance(DUE_MINUTE_MS)
    t.ops.length = 0
    const report = await runDispatcher(t.deps, t.handlers)
    expect(report.bucketsListed).toBe(3)
    expect(t.ops.filter(({ op }) => op === 'list')).toHaveLength(3)
    expect(t.ops.filter(({ op }) => op !== 'list' && op !== 'read').length).toBeLessThanOrEqual(1) // the cursor
    expect(t.seen).toEqual([])
  })
})
