/**
 * The reaper at scale and under faults, on the atomic in-memory store with a
 * manual clock that every storage operation moves (20 ms each), so the
 * reaper's time budget is spent the way real round trips spend it.
 */
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { adminSnapshot } from '../lib/admin.ts'
import { cancelJob, getJob } from '../lib/jobs.ts'
import { commitState, initialState, readState, settleFinishedJob } from '../lib/job-state.ts'
import type { Deps } from '../lib/deps.ts'
import { json, respond } from '../lib/http.ts'
import { reap } from '../lib/reaper.ts'
import { assetKeys, expiryBucket, keys } from '../lib/storage/keys.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import { StorageUnavailableError } from '../lib/storage/port.ts'
import { submitJob } from '../lib/submit.ts'
import type { JobSpec } from '../lib/types.ts'
import { runJob } from '../lib/worker.ts'
import { hookedStore, type StoreOp } from './support/hooked-store.ts'
import { manualClock, testDeps } from './support/deps.ts'
import { slow } from './support/kinds.ts'
import { createAccount } from '../lib/credits.ts'

const MS_PER_OP = 20

function setup(options: { reaperBudgetMs?: number; fails?: (op: StoreOp, key: string) => boolean } = {}) {
  const memory = memoryPort()
  const clock = manualClock()
  const ops: { op: StoreOp; key: string }[] = []
  /** Off while a test seeds data: only the reaper's own operations cost time. */
  let charging = false
  const store = hookedStore(memory, (op, key) => {
    if (!charging) return
    clock.advance(MS_PER_OP)
    ops.push({ op, key })
    if (options.fails?.(op, key)) throw new StorageUnavailableError(`storage failed for ${key}`)
  })
  const errors: { message: string; fields: Record<string, unknown> }[] = []
  const deps: Deps = {
    ...testDeps(store, { clock, kinds: [slow], settings: { reaperBudgetMs: options.reaperBudgetMs ?? 20_000 } }),
    log: { info() {}, error: (message, fields = {}) => errors.push({ message, fields }) },
  }
  const charged = async <T>(run: () => Promise<T>) => {
    charging = true
    try {
      return await run()
    } finally {
      charging = false
    }
  }
  return { deps, clock, memory, ops, errors, charged }
}

let idCounter = 0
/** Job ids that sort in creation order, as real ones do (time first). */
const orderedId = () => `job_${(Date.UTC(2026, 10, 22) + ++idCounter).toString(36)}${randomBytes(16).toString('hex')}`

const spec = (jobId: string, createdAt: number): JobSpec => ({
  jobId, account: 'acct', kind: 'slow', input: {}, createdAt,
  lockKey: null, sourceTaskId: null, clientJobId: null, idempotencyRecord: null, creditCharged: 0, reservation: null,
})

/** A finished, settled job (state, expiry marker), as a worker leaves it. */
async function finishedJob(deps: Deps) {
  const now = deps.clock.now()
  const jobId = orderedId()
  await deps.store.put(keys.spec(jobId), JSON.stringify(spec(jobId, now)))
  const done = await commitState(deps, initialState(spec(jobId, now), now), null, (s) => ({
    state: { ...s, status: 'complete', startedAt: now, finishedAt: now, result: { ok: true } },
    events: [{ type: 'done', data: null }],
  }))
  await settleFinishedJob(deps, done!)
  return jobId
}

/** A job record nobody can parse, due for retention `bucketsEarly` buckets before jobs finished now. */
async function unreadableJob(deps: Deps, bucketsEarly: number) {
  const jobId = orderedId()
  await deps.store.put(keys.state(jobId), '{"status": "complete", trunc')
  await deps.store.put(keys.expiry(expiryBucket(deps.clock.now() + deps.settings.retentionMs) - bucketsEarly, 'job', jobId), '')
  return jobId
}

const retentionPassed = (deps: Deps, clock: ReturnType<typeof manualClock>) => clock.advance(deps.settings.retentionMs + 10 * 60_000)

describe('reaper: one failing item does not stop the run', () => {
  it('an unreadable job record and a reservation whose storage keeps failing, in the oldest bucket, do not stop later buckets', async () => {
    const { deps, clock, memory, errors, charged } = setup({ fails: (_op, key) => key.includes('/busy') })
    const poison = await unreadableJob(deps, 3)
    await deps.store.put(keys.expiry(expiryBucket(clock.now() + deps.settings.retentionMs) - 3, 'reservation', `busy.${'a'.repeat(64)}`), '')
    const good = [await finishedJob(deps), await finishedJob(deps), await finishedJob(deps)]
    retentionPassed(deps, clock)

    const report = await charged(() => reap(deps))
    expect(report).toMatchObject({ expiredDeleted: 3, itemsFailed: 2, recordsUnreadable: 1 })
    for (const jobId of good) expect(memory.snapshot().has(keys.state(jobId))).toBe(false)
    // The poison is left for an operator, and its entries stay to be retried.
    expect(memory.snapshot().has(keys.state(poison))).toBe(true)
    const left = [...memory.snapshot().keys()].filter((key) => key.startsWith('expiry/'))
    expect(left.map((key) => key.slice(key.lastIndexOf('/') + 1)).sort()).toEqual([`job~${poison}`, `reservation~busy.${'a'.repeat(64)}`])
    // Reported by key, without the record's content.
    expect(errors.map((e) => e.fields.record ?? e.fields.item)).toContain(keys.state(poison))
    expect(JSON.stringify(errors)).not.toContain('trunc')

    const again = await charged(() => reap(deps))
    expect(again).toMatchObject({ expiredDeleted: 0, itemsFailed: 2 })
  })

  it('hundreds of failing items in the oldest bucket do not starve a later bucket: each run goes on where the last stopped', async () => {
    const { deps, clock, memory, charged } = setup({ reaperBudgetMs: 2_000 })
    const poison = []
    for (let i = 0; i < 300; i++) poison.push(await unreadableJob(deps, 2))
    const good = []
    for (let i = 0; i < 30; i++) good.push(await finishedJob(deps))
    retentionPassed(deps, clock)

    let runs = 0
    let failures = 0
    while (good.some((jobId) => memory.snapshot().has(keys.state(jobId)))) {
      if (++runs > 6) break
      const report = await charged(() => reap(deps))
      expect(report.unfinished || runs > 1).toBe(true) // one run cannot get through it all
      failures += report.itemsFailed
    }
    expect(runs).toBeLessThanOrEqual(6)
    expect(good.filter((jobId) => memory.snapshot().has(keys.state(jobId)))).toEqual([])
    expect(failures).toBeGreaterThanOrEqual(300) // every poison item was tried, none skipped for good
    expect(poison.every((jobId) => memory.snapshot().has(keys.state(jobId)))).toBe(true)
  })
})

describe('reaper: live checks', () => {
  it('make progress past the first items across runs under a tight budget: a dead worker at the end of the list is found', async () => {
    const { deps, clock, charged } = setup({ reaperBudgetMs: 1_000 })
    const now = clock.now()
    const running = async (heartbeatAt: number) => {
      const jobId = orderedId()
      await deps.store.put(keys.spec(jobId), JSON.stringify(spec(jobId, heartbeatAt)))
      await commitState(deps, initialState(spec(jobId, heartbeatAt), now), null, (s) => ({
        state: { ...s, status: 'running', lease: 'l', attempt: 1, startedAt: heartbeatAt, heartbeatAt },
        events: [],
      }))
      return jobId
    }
    for (let i = 0; i < 200; i++) await running(now)
    const dead = await running(now - 10 * 60_000) // the highest id: checked last
    let checked = 0
    for (let run = 0; run < 5 && (await readState(deps.store, dead))!.state.status === 'running'; run++) {
      const report = await charged(() => reap(deps))
      expect(report.liveChecked).toBeLessThan(150) // the budget really bounds a run
      checked += report.liveChecked
    }
    expect((await readState(deps.store, dead))!.state).toMatchObject({ status: 'failed', error: { code: 'worker_lost' } })
    expect(checked).toBeGreaterThanOrEqual(201)
  })

  it('a generated file whose metadata cannot be parsed is left for an operator, not deleted', async () => {
    const { deps, clock, charged } = setup()
    const assetId = `asset_${Date.UTC(2026, 10, 22).toString(36)}${randomBytes(16).toString('hex')}`
    await deps.assets.put(assetKeys.asset(assetId), new Uint8Array([1, 2, 3]), { assetId, schema: 'from another deploy' })
    await deps.store.put(keys.expiry(expiryBucket(clock.now()) - 1, 'asset', assetId), '')
    const report = await charged(() => reap(deps))
    expect(report).toMatchObject({ assetsDeleted: 0, itemsFailed: 1, recordsUnreadable: 1 })
    expect(await deps.assets.metadata(assetKeys.asset(assetId))).not.toBeNull()
  })

  it('a dead worker’s job whose check hits a storage error is checked again in the same run', async () => {
    let failNext = true
    const { deps, clock, charged } = setup({ fails: (op, key) => op === 'read' && key.startsWith('job/') && failNext && !(failNext = false) })
    const jobId = orderedId()
    await deps.store.put(keys.spec(jobId), JSON.stringify(spec(jobId, clock.now())))
    clock.advance(deps.settings.queuedTimeoutMs + 1)
    expect(await charged(() => reap(deps))).toMatchObject({ failed: 1, itemsFailed: 0 })
    expect((await readState(deps.store, jobId))!.state.error?.code).toBe('worker_never_started')
  })

  it('an unreadable live record is skipped and reported; the other live jobs are still checked', async () => {
    const { deps, clock, memory, charged } = setup()
    const broken = orderedId()
    await deps.store.put(keys.spec(broken), 'not json at all')
    const jobId = orderedId()
    await deps.store.put(keys.spec(jobId), JSON.stringify(spec(jobId, clock.now())))
    clock.advance(deps.settings.queuedTimeoutMs + 1)
    const report = await charged(() => reap(deps))
    expect(report).toMatchObject({ failed: 1, itemsFailed: 1, recordsUnreadable: 1 })
    expect(memory.snapshot().get(keys.spec(broken))).toBe('not json at all')
  })
})

describe('retention', () => {
  it('deletes every blob a job wrote (long, capped, canceled, reaped), its lock and Idempotency-Key record, without listing event blobs', async () => {
    const { deps, clock, memory, ops, charged } = setup()
    await createAccount(deps.store, clock, 'acct', 100)
    const submit = async (steps: number, resource: string, idempotencyKey: string | null = null) =>
      (await submitJob(deps, 'acct', { kind: 'slow', input: { steps, delayMs: 0, resource } }, idempotencyKey)).body.jobId
    const long = await submit(250, 'long', 'key-1') // chunks, two full pages, a sealed third
    const capped = await submit(1200, 'capped') // past the cap: pages dropped from the front
    const canceled = await submit(5, 'canceled')
    const neverRan = await submit(5, 'never-ran')
    expect(await runJob(deps, long)).toBe('complete')
    expect(await runJob(deps, capped)).toBe('complete')
    expect((await cancelJob(deps, 'acct', canceled)).status).toBe(200)
    // A cancel that gave up (job_busy) leaves its marker behind whatever the job did.
    await deps.store.put(keys.cancelRequest(long), '')
    expect((await readState(deps.store, long))!.state.log).toMatchObject({ sealed: true, firstSeq: 1 })
    expect((await readState(deps.store, capped))!.state.log.firstSeq).toBeGreaterThan(1)
    clock.advance(deps.settings.queuedTimeoutMs + 1)
    expect((await reap(deps)).failed).toBe(1) // neverRan: its worker never came
    retentionPassed(deps, clock)

    ops.length = 0
    const report = await charged(() => reap(deps))
    expect(report).toMatchObject({ expiredDeleted: 4, itemsFailed: 0, unfinished: false })
    const left = [...memory.snapshot().keys()].filter((key) => !/^(account|ledger|apikey|reaper)\//.test(key))
    expect(left).toEqual([])
    // Event blobs are derived from the log position; only the capped log needs a listing.
    const listed = ops.filter((o) => o.op === 'list' && o.key.startsWith('events/')).map((o) => o.key)
    expect(listed).toEqual([keys.eventsPrefix(capped)])
    for (const jobId of [long, canceled, neverRan]) expect(memory.snapshot().has(keys.state(jobId))).toBe(false)
  })

  it('a state delete that fails while its expiry entry is deleted beside it keeps the job scheduled, and the next run finishes it', async () => {
    let failNext = true
    const { deps, clock, memory, charged } = setup({
      fails: (op, key) => op === 'delete' && key.startsWith('job/') && failNext && !(failNext = false),
    })
    const jobId = await finishedJob(deps)
    retentionPassed(deps, clock)
    expect(await charged(() => reap(deps))).toMatchObject({ expiredDeleted: 0, itemsFailed: 1 })
    expect(memory.snapshot().has(keys.state(jobId))).toBe(true)
    expect([...memory.snapshot().keys()].filter((key) => key.startsWith('expiry/'))).toHaveLength(1)
    expect(await charged(() => reap(deps))).toMatchObject({ expiredDeleted: 1, itemsFailed: 0 })
    expect([...memory.snapshot().keys()].filter((key) => !/^(account|reaper)\//.test(key))).toEqual([])
  })
})

describe('unreadable records elsewhere', () => {
  it("a caller's own job whose record is unreadable answers 500 record_unreadable, not internal_error", async () => {
    const { deps, memory } = setup()
    const jobId = orderedId()
    await memory.put(keys.state(jobId), JSON.stringify({ jobId, account: 'acct', status: 'sideways' }))
    const logged: unknown[] = []
    const response = await respond({ info() {}, error: (message, fields) => logged.push({ message, fields }) }, async () =>
      json(await getJob(deps, 'acct', jobId)),
    )
    expect(response.status).toBe(500)
    expect((await response.json()).error.code).toBe('record_unreadable')
    expect(JSON.stringify(logged)).toContain(keys.state(jobId))
  })

  it('the admin status filter reads a bounded page of records per request and pages on with `before`', async () => {
    const { deps, memory, ops, charged } = setup()
    const now = deps.clock.now()
    const ids: string[] = []
    for (let i = 0; i < 600; i++) {
      const jobId = orderedId()
      ids.push(jobId)
      const state = { ...initialState(spec(jobId, now), now), status: i === 3 ? 'failed' : 'complete', finishedAt: now }
      await memory.put(keys.state(jobId), JSON.stringify(state))
    }
    await memory.put(keys.state(ids[300]!), 'garbage')

    const pages = []
    let before: string | undefined
    for (let request = 0; request < 10; request++) {
      ops.length = 0
      const page = await charged(() => adminSnapshot(deps, { limit: 50, status: 'failed', ...(before ? { before } : {}) }))
      expect(ops.filter((o) => o.op === 'read').length).toBeLessThanOrEqual(200)
      pages.push(page)
      if (!page.next) break
      before = page.next
    }
    expect(pages.length).toBe(3)
    expect(pages.flatMap((p) => p.jobs.map((j) => j.jobId))).toEqual([ids[3]])
    expect(pages.flatMap((p) => p.unreadable)).toEqual([{ record: keys.state(ids[300]!) }])
    expect(pages.reduce((sum, p) => sum + p.examined, 0)).toBe(600)
  })
})
