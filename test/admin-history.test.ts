/**
 * The console's history at scale, on the atomic in-memory store with every
 * storage call counted: a search page costs a bounded number of calls however
 * many jobs are kept, a filter that matches little pages on with "n of m
 * examined", a rollup counts a job once however often it is settled, stays
 * small, and goes with retention.
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { searchJobs } from '../lib/admin/search.ts'
import { summary } from '../lib/admin/summary.ts'
import { SearchQuerySchema } from '../lib/admin/schemas.ts'
import type { JobState } from '../lib/core/types.ts'
import { ROLLUP_MAX_NAMES, RollupSchema, countJob, emptyRollup, recordFinishedJob } from '../lib/jobs/history.ts'
import { initialState } from '../lib/jobs/state.ts'
import { reap } from '../lib/reaper/reap.ts'
import { keys } from '../lib/storage/keys.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import type { StoreOp } from './support/hooked-store.ts'
import { hookedStore } from './support/hooked-store.ts'
import { manualClock, testDeps } from './support/deps.ts'
import { systemClock } from '../lib/core/clock.ts'
import { interceptedStore } from './support/hooked-store.ts'

function setup() {
  const memory = memoryPort()
  const ops: { op: StoreOp; key: string }[] = []
  const clock = manualClock()
  const deps = testDeps(
    hookedStore(memory, (op, key) => void ops.push({ op, key })),
    { clock },
  )
  return { deps, memory, ops, clock }
}

let counter = 0
const jobAt = (at: number) => `job_${(at + ++counter).toString(36)}${randomBytes(16).toString('hex')}`

/** A finished job as the worker leaves it: state written, then settled (here: only its history). */
async function finished(deps: ReturnType<typeof setup>['deps'], fields: Partial<JobState> & { finishedAt: number }) {
  const jobId = jobAt(fields.finishedAt - 60_000)
  const base = initialState(
    { jobId, account: 'acct', kind: 'summarize', input: null, createdAt: fields.finishedAt - 60_000, lockKey: null, sourceTaskId: null, clientJobId: null, idempotencyRecord: null, creditCharged: 0, reservation: null },
    fields.finishedAt,
  )
  const state: JobState = { ...base, status: 'complete', startedAt: fields.finishedAt - 30_000, attempt: 1, ...fields, jobId }
  await deps.store.put(keys.state(jobId), JSON.stringify(state))
  await recordFinishedJob(deps, state)
  return state
}

const query = (raw: Record<string, string>) => SearchQuerySchema.parse(raw)

describe('search at scale', () => {
  it('3000 finished jobs over 25 hours: every page of a rare filter costs at most 1 + 24 lists and its rows in reads', async () => {
    const { deps, ops, clock } = setup()
    const start = clock.now()
    const failures: string[] = []
    for (let i = 0; i < 3000; i++) {
      const rare = i % 500 === 7
      const state = await finished(deps, { finishedAt: start + i * 30_000, ...(rare ? { status: 'failed', account: 'rare', error: { code: 'boom', message: 'x' } } : {}) })
      if (rare) failures.push(state.jobId)
    }
    clock.advance(3000 * 30_000)

    const found: string[] = []
    let examined = 0
    let cursor: string | undefined
    let pages = 0
    for (; pages < 100; pages++) {
      ops.length = 0
      const page = await searchJobs(deps, query({ status: 'failed', account: 'rare', limit: '25', ...(cursor ? { cursor } : {}) }))
      expect(ops.filter((o) => o.op === 'list').length).toBeLessThanOrEqual(1 + 24)
      expect(ops.filter((o) => o.op === 'read').length).toBe(page.jobs.length)
      expect(ops.filter((o) => o.op !== 'list' && o.op !== 'read')).toEqual([])
      found.push(...page.jobs.map((job) => job.jobId))
      examined += page.examined
      if (!page.next) break
      cursor = page.next
    }
    expect(found).toEqual([...failures].reverse())
    expect(examined).toBe(3000) // every finished job looked at once, over several pages
    expect(pages).toBeGreaterThan(5)
  })

  it('a page of 50 unfiltered jobs is one bucket list away, newest first', async () => {
    const { deps, ops, clock } = setup()
    const ids: string[] = []
    for (let i = 0; i < 400; i++) ids.push((await finished(deps, { finishedAt: clock.now() + i * 1000 })).jobId)
    clock.advance(400 * 1000)
    ops.length = 0
    const page = await searchJobs(deps, query({ limit: '50' }))
    expect(page.jobs.map((job) => job.jobId)).toEqual(ids.slice(-50).reverse())
    // queue/, the bucket folders, one or two buckets (400 s of finishes span at most two)
    expect(ops.filter((o) => o.op === 'list').length).toBeLessThanOrEqual(4)
    expect(ops.filter((o) => o.op === 'read').length).toBe(50)
  })
})

describe('rollups', () => {
  it('a job settled twice is counted once', async () => {
    const { deps, clock } = setup()
    const state = await finished(deps, { finishedAt: clock.now(), status: 'failed', error: { code: 'boom', message: 'x' } })
    await recordFinishedJob(deps, state)
    await recordFinishedJob(deps, state)
    const seen = await summary(deps)
    expect(seen.counts).toEqual({ failed: 1 })
    expect(seen.failures).toEqual([{ code: 'boom', count: 1 }])
  })

  it('100 jobs settled at once, with 0-20 ms per storage call, are all counted', async () => {
    const memory = memoryPort()
    const slow = hookedStore(memory, () => new Promise((resolve) => setTimeout(resolve, Math.random() * 20)))
    const deps = testDeps(slow, { clock: systemClock })
    const at = Date.now()
    const states = Array.from({ length: 100 }, (_, i) => ({
      ...initialState(
        { jobId: jobAt(at + i), account: 'acct', kind: 'summarize', input: null, createdAt: at - 1000, lockKey: null, sourceTaskId: null, clientJobId: null, idempotencyRecord: null, creditCharged: 0, reservation: null },
        at,
      ),
      status: 'complete' as const,
      startedAt: at - 500,
      finishedAt: at,
    }))
    await Promise.all(states.map((state) => recordFinishedJob(deps, state)))
    expect((await summary(deps)).counts).toEqual({ complete: 100 })
  })

  it('a rollup that cannot be written gives the index entry back, so a later settle counts the job', async () => {
    const { deps, memory } = setup()
    let broken = true
    const flaky = interceptedStore(memory, (op, key, call) => (broken && key.includes('/stats~') && op !== 'read' ? Promise.reject(new Error('storage down')) : call()))
    const flakyDeps = { ...deps, store: flaky }
    const state = await finished(flakyDeps, { finishedAt: deps.clock.now(), status: 'failed', error: { code: 'boom', message: 'x' } })
    expect((await summary(deps)).counts).toEqual({})
    broken = false
    await recordFinishedJob(flakyDeps, state) // the reaper settling the job again
    expect((await summary(deps)).counts).toEqual({ failed: 1 })
  })

  it('kinds and failure codes named like Object properties are counted as names', () => {
    let rollup = emptyRollup(0)
    for (const name of ['toString', 'constructor', 'valueOf', 'hasOwnProperty', '__proto__']) {
      rollup = countJob(rollup, { status: 'failed', kind: name, startedAt: 0, finishedAt: 1000, error: { code: name, message: '' } })
    }
    const parsed = RollupSchema.parse(JSON.parse(JSON.stringify(rollup)))
    expect(parsed.failures.toString).toBe(1)
    expect(parsed.failures.constructor).toBe(1)
    expect(parsed.durations.valueOf).toEqual(expect.objectContaining({ count: 1 }))
    expect(parsed.counts).toEqual({ failed: 5 })
    expect((Object as unknown as { count?: unknown }).count).toBeUndefined()
  })

  it('keep at most ROLLUP_MAX_NAMES kinds and codes, the rest as other', () => {
    let rollup = emptyRollup(0)
    for (let i = 0; i < 200; i++) {
      rollup = countJob(rollup, { status: 'failed', kind: `kind${i}`, startedAt: 0, finishedAt: i * 1000, error: { code: `code_${i}`, message: '' } })
    }
    expect(Object.keys(rollup.failures).length).toBe(ROLLUP_MAX_NAMES)
    expect(Object.keys(rollup.durations).length).toBe(ROLLUP_MAX_NAMES)
    expect(rollup.failures.other).toBe(200 - (ROLLUP_MAX_NAMES - 1))
    expect(JSON.stringify(rollup).length).toBeLessThan(8_000)
  })

  it('p50/p95 are the duration buckets holding them; the summary reads 96 rollups and lists queue/ and waiting/ once each', async () => {
    const { deps, ops, clock } = setup()
    for (let i = 0; i < 100; i++) await finished(deps, { finishedAt: clock.now() + i, startedAt: clock.now() + i - (i < 90 ? 800 : 100_000) })
    ops.length = 0
    const seen = await summary(deps)
    expect(ops.filter((o) => o.op === 'read').length).toBe(96)
    expect(ops.filter((o) => o.op === 'list').length).toBe(2)
    expect(seen.durations).toEqual([{ kind: 'summarize', count: 100, p50Ms: 1000, p95Ms: 120_000 }])
  })

  it('the index entries and rollups go with retention: nothing of them is left after the reaper', async () => {
    const { deps, memory, clock } = setup()
    for (let i = 0; i < 20; i++) await finished(deps, { finishedAt: clock.now() + i * 60_000 })
    for (const key of memory.snapshot().keys()) if (key.startsWith('job/')) await memory.delete(key)
    clock.advance(deps.settings.retentionMs + 3600_000)
    await reap(deps)
    expect([...memory.snapshot().keys()].filter((key) => key.startsWith('expiry/'))).toEqual([])
  })
})
