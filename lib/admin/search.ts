/**
 * The console's job list: newest first, filtered by status, kind and account,
 * a page at a time, with storage reads bounded per page whatever is stored.
 *
 * Live jobs come from `queue/` and `waiting/` (a spec exists only while its job is live),
 * finished ones from the history index (jobs/history.ts): one entry per
 * finished job in its retention bucket, whose name carries status, kind and
 * account, so filtering finished jobs costs lists, not reads. A page:
 * - live part: 1 list each of `queue/` and `waiting/` (+1 per 1000 live jobs) and at most
 *   2 × `limit` reads (state, or spec while queued); kind and account are
 *   checked after the read, so a filter counts against `examined`;
 * - finished part: 1 list of the bucket folders, at most MAX_BUCKETS_PER_PAGE
 *   bucket lists (+1 per 1000 jobs finished in one 5-minute bucket) and at
 *   most `limit` reads, one per job shown.
 */
import type { Deps } from '../core/deps.ts'
import { isTerminal } from '../core/types.ts'
import { type FinishedEntry, historyKeys, parseFinishedEntry } from '../jobs/history.ts'
import { operatorJob } from '../jobs/views.ts'
import { CorruptRecordError } from '../core/records.ts'
import { bucketOf, expiryBucket, keys } from '../storage/keys.ts'
import type { SearchPage, SearchQuery } from './schemas.ts'
import { readOperatorJob } from './snapshot.ts'

/** Bucket lists per page: two hours of finishes. A filter that matches little pages on from where it stopped. */
export const MAX_BUCKETS_PER_PAGE = 24
const LIVE_STATUSES = new Set(['scheduled', 'queued', 'running', 'retrying'])

type Row = ReturnType<typeof operatorJob>

export async function searchJobs(deps: Deps, query: SearchQuery): Promise<SearchPage> {
  const page: SearchPage = { jobs: [], next: null, examined: 0, skipped: 0 }
  const cursor = query.cursor ?? null
  const wantsLive = !query.status || LIVE_STATUSES.has(query.status)
  const wantsFinished = !query.status || !LIVE_STATUSES.has(query.status)
  if (wantsLive && (cursor === null || cursor.startsWith('live.'))) {
    const after = cursor?.slice('live.'.length) ?? null
    const more = await liveJobs(deps, query, after, page)
    if (more !== null || !wantsFinished) {
      page.next = more
      return page
    }
  }
  if (!wantsFinished || page.jobs.length >= query.limit) {
    page.next = wantsFinished ? `done.${newestBucket(deps)}.top` : null
    return page
  }
  const [bucket, after] = cursor?.startsWith('done.') ? parseDone(cursor) : [newestBucket(deps), 'top']
  page.next = await finishedJobs(deps, query, bucket, after, page)
  return page
}

/** A job finishing now lands in this bucket; later buckets hold only other retention (assets). */
const newestBucket = (deps: Deps) => expiryBucket(deps.clock.now() + deps.settings.retentionMs)

function parseDone(cursor: string): [number, string] {
  const [, bucket, after] = cursor.split('.')
  return [Number(bucket), after!]
}

function matches(query: SearchQuery, job: { status: string; kind: string; account: string }) {
  return (!query.status || job.status === query.status) && (!query.kind || job.kind === query.kind) && (!query.account || job.account === query.account)
}

/** Live jobs older than `after`; returns the cursor to go on with while some are left unread. */
async function liveJobs(deps: Deps, query: SearchQuery, after: string | null, page: SearchPage): Promise<string | null> {
  // Started jobs, and those waiting for their time or their turn (scheduled, queued).
  const [started, waiting] = await Promise.all([deps.store.list(keys.specPrefix), deps.store.list(keys.waitingPrefix)])
  const specIds = new Set([...started.keys.map((key) => key.slice(keys.specPrefix.length)), ...waiting.keys.map((key) => key.slice(keys.waitingPrefix.length))])
  // Ids start with their creation time, so sorting them sorts by age.
  const ids = [...specIds].filter((id) => after === null || id < after).sort().reverse()
  const batch = ids.slice(0, query.limit)
  const found = await Promise.all(batch.map((jobId) => readOperatorJob(deps, jobId)))
  page.examined += batch.length
  for (const job of found) {
    if (job === null || 'unreadable' in job) page.skipped++
    // A finished job still in `queue/` is being settled; it is listed with the finished ones.
    else if (!isTerminal(job.status) && matches(query, job)) page.jobs.push(job)
  }
  return ids.length > batch.length ? `live.${batch.at(-1)}` : null
}

/**
 * Finished jobs from bucket `bucket` down, starting below `after` in it
 * (`top`: from its newest). Stops when the page is full or after
 * MAX_BUCKETS_PER_PAGE lists; returns where to go on, or null at the oldest.
 */
async function finishedJobs(deps: Deps, query: SearchQuery, bucket: number, after: string, page: SearchPage): Promise<string | null> {
  const { directories } = await deps.store.list(keys.expiryPrefix, { directories: true })
  const buckets = directories
    .map((dir) => bucketOf(dir.endsWith('/') ? dir : `${dir}/`))
    .filter((b) => Number.isFinite(b) && b <= bucket)
    .sort((a, b) => b - a)
  const room = query.limit - page.jobs.length
  const chosen: FinishedEntry[] = []
  let next: string | null = null
  let listed = 0
  for (const current of buckets) {
    if (listed === MAX_BUCKETS_PER_PAGE) {
      next = `done.${current}.top`
      break
    }
    listed++
    const entries = (await deps.store.list(historyKeys.entryPrefix(current))).keys
      .map(parseFinishedEntry)
      .filter((entry): entry is FinishedEntry => entry !== null && (current !== bucket || after === 'top' || entry.jobId < after))
      .sort((a, b) => (a.jobId < b.jobId ? 1 : -1))
    for (const entry of entries) {
      page.examined++
      if (!matches(query, entry)) continue
      chosen.push(entry)
      if (chosen.length === room) break
    }
    if (chosen.length === room) {
      const last = chosen.at(-1)!
      next = `done.${current}.${last.jobId}`
      break
    }
  }
  const rows = await Promise.all(chosen.map((entry) => readFinished(deps, entry.jobId)))
  for (const row of rows) {
    if (row) page.jobs.push(row)
    else page.skipped++
  }
  return next
}

/** A finished job's row; null when retention took it or its record cannot be read. */
async function readFinished(deps: Deps, jobId: string): Promise<Row | null> {
  try {
    const job = await readOperatorJob(deps, jobId)
    return job && !('unreadable' in job) ? job : null
  } catch (error) {
    if (error instanceof CorruptRecordError) return null
    throw error
  }
}
