/**
 * The operator console's storage cost, for `npm run bench`: a day of 100 000
 * finished jobs (2% failed, most of those in one account), then what a search
 * page, a rare filter paged to the end, the 24 h summary and each job's
 * history record cost. On the in-memory store, whose operations map one to
 * one onto the Blobs adapter's requests (read → get, create/replace/put → set,
 * list → list; a real list is one request per 1000 keys).
 */
import { performance } from 'node:perf_hooks'
import { SearchQuerySchema } from '../lib/admin/schemas.ts'
import { searchJobs } from '../lib/admin/search.ts'
import { summary } from '../lib/admin/summary.ts'
import type { JobState } from '../lib/core/types.ts'
import { recordFinishedJob } from '../lib/jobs/history.ts'
import { initialState } from '../lib/jobs/state.ts'
import { keys } from '../lib/storage/keys.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import type { BlobPort } from '../lib/storage/port.ts'
import { manualClock, testDeps } from '../test/support/deps.ts'

const OPS = { read: 'get', create: 'set', replace: 'set', put: 'set', delete: 'delete', list: 'list' } as const
type Tally = Record<'get' | 'set' | 'delete' | 'list', number>

function countingStore(inner: BlobPort) {
  const tally: Tally = { get: 0, set: 0, delete: 0, list: 0 }
  const store = Object.fromEntries(
    (Object.keys(OPS) as (keyof typeof OPS)[]).map((op) => [
      op,
      (...args: unknown[]) => {
        tally[OPS[op]]++
        return (inner[op] as (...a: unknown[]) => Promise<unknown>)(...args)
      },
    ]),
  ) as unknown as BlobPort
  const reset = () => Object.assign(tally, { get: 0, set: 0, delete: 0, list: 0 })
  return { store, tally, reset }
}

export interface AdminRow {
  scenario: string
  budget: string
  measured: string
  bytes: string
  time: string
  ok: boolean
}

const JOBS = 100_000
const DAY = 24 * 3600_000
const LIMIT = 50
const fmt = (t: Tally) => `${t.get} get, ${t.set} set, ${t.list} list`

export async function measureAdmin(): Promise<AdminRow[]> {
  const { store, tally, reset } = countingStore(memoryPort())
  const clock = manualClock()
  const deps = testDeps(store, { clock })
  const start = clock.now()
  let rare = 0
  let stateWrites = 0
  for (let i = 0; i < JOBS; i++) {
    const finishedAt = start + Math.floor((i * DAY) / JOBS)
    const failed = i % 50 === 0
    const account = failed && i % 100 === 0 ? 'rare' : `acct-${i % 40}`
    if (failed && account === 'rare') rare++
    const jobId = `job_${finishedAt.toString(36)}${i.toString(16).padStart(32, '0')}`
    const spec = { jobId, account, kind: i % 3 ? 'summarize' : 'render', input: null, createdAt: finishedAt - 20_000, lockKey: null, sourceTaskId: null, clientJobId: null, idempotencyRecord: null, creditCharged: 0, reservation: null }
    const state: JobState = { ...initialState(spec, finishedAt), status: failed ? 'failed' : 'complete', startedAt: finishedAt - 5_000 - (i % 7) * 1000, finishedAt, attempt: 1, error: failed ? { code: 'boom', message: 'x' } : null }
    // Only the records a measured page reads (the newest, the rare ones): fewer keys for the in-memory list to sort.
    if (i >= JOBS - 2 * LIMIT || account === 'rare') {
      stateWrites++
      await store.put(keys.state(jobId), JSON.stringify(state))
    }
    await recordFinishedJob(deps, state)
  }
  clock.set(start + DAY)
  const perJob = { ...tally }

  reset()
  let t0 = performance.now()
  const first = await searchJobs(deps, SearchQuerySchema.parse({ limit: String(LIMIT) }))
  const firstCost = { ...tally }
  const firstMs = performance.now() - t0

  let pages = 0
  let found = 0
  let worst: Tally = { get: 0, set: 0, delete: 0, list: 0 }
  let cursor: string | undefined
  t0 = performance.now()
  for (;;) {
    reset()
    const page = await searchJobs(deps, SearchQuerySchema.parse({ status: 'failed', account: 'rare', limit: String(LIMIT), ...(cursor ? { cursor } : {}) }))
    pages++
    found += page.jobs.length
    if (tally.get + tally.list > worst.get + worst.list) worst = { ...tally }
    if (!page.next) break
    cursor = page.next
  }
  const rareMs = performance.now() - t0

  reset()
  t0 = performance.now()
  const seen = await summary(deps)
  const summaryCost = { ...tally }
  const summaryMs = performance.now() - t0
  const counted = Object.values(seen.counts).reduce((a, b) => a + b, 0)

  return [
    {
      scenario: `Console history per finished job (index entry + hourly rollup), ${JOBS.toLocaleString('en')} jobs in a day`,
      budget: '≤ 3 operations per job, none growing with history',
      measured: `${(perJob.get / JOBS).toFixed(2)} get + ${((perJob.set - stateWrites) / JOBS).toFixed(2)} set per job (the state writes of this bench excluded)`,
      bytes: '',
      time: '',
      ok: (perJob.get + perJob.set - stateWrites) / JOBS <= 3,
    },
    {
      scenario: `Console search, first page of ${LIMIT}, with ${JOBS.toLocaleString('en')} jobs kept`,
      budget: `≤ 2 + 24 lists and ≤ ${LIMIT} reads`,
      measured: `${fmt(firstCost)}; ${first.jobs.length} jobs`,
      bytes: '',
      time: `${firstMs.toFixed(1)} ms (in memory)`,
      ok: firstCost.list <= 26 && firstCost.get <= LIMIT && first.jobs.length === LIMIT,
    },
    {
      scenario: `Console search for a rare filter (failed jobs of one account: ${rare} of ${JOBS.toLocaleString('en')}), paged to the end`,
      budget: `every page ≤ 2 + 24 lists and ≤ ${LIMIT} reads; all ${rare} found`,
      measured: `${pages} pages; worst page ${fmt(worst)}; ${found} found`,
      bytes: '',
      time: `${rareMs.toFixed(0)} ms for all pages (in memory)`,
      ok: worst.list <= 26 && worst.get <= LIMIT && found === rare,
    },
    {
      scenario: `Console 24 h summary with ${JOBS.toLocaleString('en')} jobs in the day`,
      budget: '24 × 4 rollup reads + 1 list, whatever the number of jobs',
      measured: `${fmt(summaryCost)}; counts ${counted.toLocaleString('en')} jobs`,
      bytes: '',
      time: `${summaryMs.toFixed(1)} ms (in memory)`,
      ok: summaryCost.get <= 96 && summaryCost.list <= 1,
    },
  ]
}
