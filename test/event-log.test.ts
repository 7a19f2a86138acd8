import { describe, expect, it } from 'vitest'
import { CHUNK_SIZE, PAGE_SIZE, jobLog, readEvents } from '../lib/events/log.ts'
import { type StoredState, commitState, initialState, readState, settleFinishedJob } from '../lib/jobs/state.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import type { BlobPort } from '../lib/storage/port.ts'
import type { JobSpec } from '../lib/core/types.ts'
import { useBlobs } from './support/blobs.ts'
import { manualClock, testDeps } from './support/deps.ts'

const blobs = useBlobs()

const spec: JobSpec = {
  jobId: 'job_test',
  account: 'acct',
  kind: 'summarize',
  input: {},
  createdAt: 0,
  lockKey: null,
  sourceTaskId: null,
  clientJobId: null,
  idempotencyRecord: null,
  creditCharged: 0,
  reservation: null,
}

/** Appends `count` events one write at a time, like a worker does. */
async function appendMany(store: BlobPort, count: number, maxEvents = 1000, start?: StoredState) {
  const deps = testDeps(store, { clock: manualClock(), settings: { maxEvents } })
  let current = start ?? (await commitState(deps, initialState(spec, 0), null, (s) => ({ state: { ...s, status: 'running' }, events: [] })))!
  for (let i = 1; i <= count; i++) {
    const next = await commitState(deps, current.state, current.version, (s) => ({ state: s, events: [{ type: 'tick', data: { i } }] }))
    if (!next) throw new Error('conflict')
    current = next
  }
  return current
}

async function readAll(store: BlobPort, stored: StoredState, after = 0, limit = 1000) {
  return readEvents(store, jobLog(spec.jobId), stored.state.log, after, limit)
}

describe('event log', () => {
  it('seq starts at 1 with no gaps, keeps order and payloads, and replays from any cursor', async () => {
    const store = memoryPort()
    const stored = await appendMany(store, 257)
    expect(stored.state.log).toMatchObject({ firstSeq: 1, lastSeq: 257, flushedSeq: 250 })
    expect(stored.state.log.tail).toHaveLength(7)
    const { events } = await readAll(store, stored)
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 257 }, (_, i) => i + 1))
    expect(events.map((e) => (e.data as { i: number }).i)).toEqual(Array.from({ length: 257 }, (_, i) => i + 1))
    for (const after of [0, 1, 9, 10, 11, 99, 100, 101, 199, 249, 250, 256, 257]) {
      for (const limit of [1, 7, 10, 100, 1000]) {
        const slice = await readAll(store, stored, after, limit)
        const expected = Array.from({ length: Math.min(limit, 257 - after) }, (_, i) => after + i + 1)
        expect(slice.events.map((e) => e.seq), `after=${after} limit=${limit}`).toEqual(expected)
      }
    }
  })

  it('polling with the cursor from each answer sees every event exactly once', async () => {
    const store = memoryPort()
    let stored = await appendMany(store, 3)
    const seen: number[] = []
    let cursor = 0
    for (let round = 0; round < 40; round++) {
      const slice = await readAll(store, stored, cursor, 13)
      seen.push(...slice.events.map((e) => e.seq))
      cursor = slice.events.at(-1)?.seq ?? cursor
      stored = await appendMany(store, round % 7, 1000, stored)
    }
    const rest = await readAll(store, stored, cursor, 1000)
    seen.push(...rest.events.map((e) => e.seq))
    expect(seen).toEqual(Array.from({ length: stored.state.log.lastSeq }, (_, i) => i + 1))
  })

  it('writes one chunk per CHUNK_SIZE events and one page per PAGE_SIZE, never rewriting older ones', async () => {
    const store = memoryPort()
    await appendMany(store, 2 * PAGE_SIZE + 5)
    const keys = [...store.snapshot().keys()].filter((k) => k.startsWith('events/'))
    expect(keys.filter((k) => k.includes('/c/'))).toHaveLength((2 * PAGE_SIZE) / CHUNK_SIZE)
    expect(keys.filter((k) => k.includes('/p/'))).toHaveLength(2)
  })

  it('the cap drops whole pages from the front and the reader is told where the log starts', async () => {
    const store = memoryPort()
    const stored = await appendMany(store, 730, 300)
    expect(stored.state.log.lastSeq).toBe(730)
    expect(stored.state.log.firstSeq).toBe(501)
    const fromStart = await readAll(store, stored, 0)
    expect(fromStart.truncatedBefore).toBe(501)
    expect(fromStart.events[0]?.seq).toBe(501)
    expect(fromStart.events.at(-1)?.seq).toBe(730)
    const current = await readAll(store, stored, 600)
    expect(current.truncatedBefore).toBeNull()
    // dropped pages are really gone from storage
    const keys = [...store.snapshot().keys()].filter((k) => k.startsWith('events/'))
    expect(keys.some((k) => k.endsWith('/p/0000000000') || k.endsWith('/c/0000000000'))).toBe(false)
    expect(keys.length).toBeLessThanOrEqual(3 * (PAGE_SIZE / CHUNK_SIZE + 1))
  })

  it('a finished log is sealed: a late reader replays exactly 1000 events from 10 pages, and 1005 within 11', async () => {
    for (const total of [1000, 1005]) {
      const store = memoryPort()
      const deps = testDeps(store, { clock: manualClock(), settings: { maxEvents: 2000 } })
      const running = await appendMany(store, total - 1, 2000)
      const finished = (await commitState(deps, running.state, running.version, (s) => ({
        state: { ...s, status: 'complete', finishedAt: 1 },
        events: [{ type: 'done', data: null }],
      })))!
      await settleFinishedJob(deps, finished)
      const sealed = (await readState(store, spec.jobId))!
      expect(sealed.state.log.sealed).toBe(true)
      let reads = 0
      const counting = { ...store, read: (key: string) => (reads++, store.read(key)) }
      const { events } = await readEvents(counting, jobLog(spec.jobId), sealed.state.log, 0, 2000)
      expect(events.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1))
      expect(reads).toBeLessThanOrEqual(Math.ceil(total / 100)) // plus the one state read = 1 + n/100
      if (total === 1000) expect(reads).toBe(10)
    }
  })

  it('works the same over the real local Blobs server', async () => {
    const store = blobs.port('event-log')
    const stored = await appendMany(store, 123)
    const { events } = await readAll(store, stored)
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 123 }, (_, i) => i + 1))
  })

  it('a stale writer cannot append: its write is refused and the log is unchanged', async () => {
    const store = memoryPort()
    const deps = testDeps(store)
    const first = await appendMany(store, 5)
    const winner = await commitState(deps, first.state, first.version, (s) => ({ state: s, events: [{ type: 'a', data: null }] }))
    expect(winner).not.toBeNull()
    const stale = await commitState(deps, first.state, first.version, (s) => ({ state: s, events: [{ type: 'b', data: null }] }))
    expect(stale).toBeNull()
    const { events } = await readAll(store, winner!)
    expect(events.map((e) => e.type)).toEqual(['tick', 'tick', 'tick', 'tick', 'tick', 'a'])
  })
})
