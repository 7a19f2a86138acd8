/**
 * End to end: the real `netlify dev` (offline, no Edge Functions) serving the
 * real functions from a throwaway project root, driven over plain HTTP. The
 * shared server (test/e2e/shared.ts): this suite's two accounts are its own,
 * and what it reads of the whole site (the admin snapshot) it filters to them.
 *
 * Tests run in order: later ones use jobs made earlier. A crash of the server
 * mid-job and the reaper of the restarted one need a server of their own
 * (two startups): test/soak/netlify-dev-crash.test.ts, in `npm run test:soak`.
 * The lock proof (20 concurrent submits, round after round) is lock-proof.test.ts.
 */
import { existsSync } from 'node:fs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { expectReportShape, invokeReaper } from './reaper-invoke.ts'
import { type SharedDevInfo, sharedNetlifyDev, sharedNetlifyDevOutput } from './shared.ts'
import { REPO, STARTUP_TIMEOUT_MS, newApiKey, registerKeys, sandboxAccountPath, secret } from './support.ts'

interface JobEvent {
  seq: number
  type: string
  data: any
  ts: number
}

interface Feed {
  jobId: string
  status: string
  events: JobEvent[]
  next: number
  done: boolean
  firstSeq: number
}

const ACCOUNT_A = 'e2e-a'
const ACCOUNT_B = 'e2e-b'
const keyA = newApiKey(ACCOUNT_A)
const keyB = newApiKey(ACCOUNT_B)

let dev: SharedDevInfo
const adminAuth = () => `Bearer ${dev.adminToken}`
/** The admin snapshot (every account's), cut down to this suite's accounts. */
async function ourSnapshot() {
  const res = await api('/api/admin/jobs?limit=500', { auth: adminAuth() })
  expect(res.status, res.text).toBe(200)
  const jobs = (res.body.jobs as any[]).filter((job) => job.account === ACCOUNT_A || job.account === ACCOUNT_B)
  const ours = new Set(jobs.map((job) => job.jobId))
  return { jobs, locks: (res.body.locks as any[]).filter((lock) => ours.has(lock.jobId)), text: res.text }
}
const timings: Record<string, number> = {}
const cancelAttempts: number[] = []
const facts: Record<string, string> = {}

// ---- text ----------------------------------------------------------------

const SUBJECTS = ['The archive', 'Our team', 'The storage layer', 'Each worker', 'The scheduler', 'A reviewer', 'The event log', 'Every client', 'The operator', 'The reaper', 'A background function']
const VERBS = ['records', 'inspects', 'summarizes', 'retries', 'releases', 'validates', 'compresses', 'publishes', 'replays', 'audits', 'schedules']
const OBJECTS = ['the quarterly report', 'a durable queue', 'the lock table', 'each heartbeat', 'the cursor position', 'a stale lease', 'the retention bucket', 'every window', 'the signed request', 'the final summary', 'the event feed']
const TAILS = ['before noon', 'without losing progress', 'after a restart', 'in strict order', 'with a fresh token', 'for the audit trail', 'under heavy load', 'at the end of the day', 'once per minute']

/** Deterministic prose: `sentences` sentences, paragraphs of six, unique per `tag`. */
function prose(tag: string, sentences: number): string {
  const out: string[] = []
  for (let i = 0; i < sentences; i++) {
    const pick = <T>(list: T[], k: number) => list[(i * k + tag.length) % list.length]!
    out.push(`${pick(SUBJECTS, 1)} ${pick(VERBS, 3)} ${pick(OBJECTS, 7)} ${pick(TAILS, 5)} (${tag} note ${i + 1}).`)
    if (i % 6 === 5) out.push('\n\n')
  }
  return out.join(' ')
}

// ---- HTTP ----------------------------------------------------------------

interface ApiResponse {
  status: number
  headers: Headers
  body: any
  text: string
}

async function api(
  path: string,
  options: { key?: string | null; auth?: string; method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.key) headers.authorization = `Bearer ${options.key}`
  if (options.auth) headers.authorization = options.auth
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(`${dev.url}${path}`, {
    method: options.method ?? (options.body !== undefined ? 'POST' : 'GET'),
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    // A long-poll holds up to 20 s, plus the function's cold start (up to ~16 s seen on a loaded machine).
    signal: AbortSignal.timeout(60_000),
  })
  const text = await res.text()
  let body: any = null
  try {
    body = text ? JSON.parse(text) : null
  } catch {
    body = null
  }
  return { status: res.status, headers: res.headers, body, text }
}

const submit = (input: Record<string, unknown>, key = keyA) => api('/api/jobs', { key, body: { kind: 'summarize', input } })

/** Follows the feed with long-polls from `after` until `done`, `limit` events per request. */
async function follow(jobId: string, options: { after?: number; limit?: number; key?: string } = {}) {
  const events: JobEvent[] = []
  let cursor = options.after ?? 0
  let requests = 0
  for (;;) {
    const res = await api(`/api/jobs/${jobId}/events?after=${cursor}&limit=${options.limit ?? 100}&wait=20`, { key: options.key ?? keyA })
    expect(res.status, res.text).toBe(200)
    requests++
    const feed = res.body as Feed
    expect(feed.jobId).toBe(jobId)
    expect(feed.events.length).toBeLessThanOrEqual(options.limit ?? 100)
    if (feed.events.length > 0) expect(feed.next).toBe(feed.events.at(-1)!.seq)
    else expect(feed.next).toBe(cursor)
    events.push(...feed.events)
    cursor = feed.next
    if (feed.done) {
      expect(res.headers.get('retry-after')).toBeNull()
      return { events, requests, last: feed }
    }
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/)
    if (requests > 2000) throw new Error(`feed of ${jobId} never finished (cursor ${cursor})`)
  }
}

/**
 * Cancels, retrying 409 job_busy: cancel's read-then-conditional-write (5
 * rounds per request) can lose the race with the job's own state writes (a
 * running summarize job rewrites its state for every window, back to back: 1
 * to 21 requests in our runs). So this retries promptly (250 ms, not the 1 s
 * Retry-After) for as long as the job is live.
 */
async function cancelAccepted(jobId: string, budgetMs = 150_000) {
  const deadline = Date.now() + budgetMs
  for (let attempt = 1; ; attempt++) {
    const res = await api(`/api/jobs/${jobId}/cancel`, { key: keyA, method: 'POST' })
    if (res.status === 409 && res.body?.error?.code === 'job_busy' && Date.now() < deadline) {
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/)
      await new Promise((done) => setTimeout(done, 250))
      continue
    }
    cancelAttempts.push(attempt)
    expect([200, 202], `cancel of ${jobId}, attempt ${attempt}: ${res.status} ${res.text}`).toContain(res.status)
    return res
  }
}

function expectGaplessFrom(events: JobEvent[], first: number) {
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => first + i))
}

// ---- suite -----------------------------------------------------------------

beforeAll(async () => {
  dev = await sharedNetlifyDev()
  await registerKeys(dev.root, [
    { apiKey: keyA, account: ACCOUNT_A, credits: 1000 },
    { apiKey: keyB, account: ACCOUNT_B, credits: 100 },
  ])
}, STARTUP_TIMEOUT_MS + 30_000)

afterAll(() => {
  console.log(`[e2e timings] ${JSON.stringify({ ...timings, cancelAttempts, ...facts })}`)
})

beforeEach(({ onTestFailed }) => {
  onTestFailed(async () => console.error(`--- netlify dev output (tail) ---\n${(await sharedNetlifyDevOutput()).slice(-6000)}`))
})

describe('netlify dev, end to end', () => {
  let mainJobId: string
  let longJobId: string

  it('serves the functions from the temporary root, with our environment', async () => {
    // ADMIN_TOKEN: the admin route accepts exactly the random token the server was given. JOBS_SIGNING_SECRET
    // is shown by every job below that completes: submit signs the worker call, the worker verifies it.
    const admin = await api('/api/admin/jobs', { auth: adminAuth() })
    expect(admin.status, admin.text).toBe(200)
    expect(await ourSnapshot()).toMatchObject({ jobs: [], locks: [] })
    // Isolated: our accounts live in the temporary root's sandbox, never in the repo's own .netlify/.
    expect(existsSync(sandboxAccountPath(dev.root, ACCOUNT_A))).toBe(true)
    expect(existsSync(sandboxAccountPath(REPO, ACCOUNT_A))).toBe(false)
    const output = await sharedNetlifyDevOutput()
    expect(output).toMatch(/Loaded function jobs/)
    expect(output).toMatch(/Loaded function worker-background/)
    expect(output).toMatch(/Loaded function reaper/)
    // Functions run on the Node the project requires (node_modules/.bin first on PATH).
    const meta = admin.headers.get('x-nf-invocation-metadata')
    if (meta) {
      const { version } = JSON.parse(Buffer.from(meta, 'base64').toString('utf8')) as { version: string }
      expect(Number(/^v(\d+)/.exec(version)?.[1])).toBeGreaterThanOrEqual(22)
      facts.functionsNode = version
    }
  }, 60_000)

  it('refuses requests without a valid API key (401)', async () => {
    // Each route once, each kind of bad key at least once: the handlers refuse every combination
    // (test/http-api.test.ts, test/security/security.test.ts); here, that netlify dev passes the answer on.
    const fakeId = `job_${'0'.repeat(10)}${'a'.repeat(32)}`
    const checks = (
      [
        ['/api/jobs', 'POST', undefined],
        [`/api/jobs/${fakeId}`, 'GET', 'Bearer not-a-key'],
        [`/api/jobs/${fakeId}/events`, 'GET', `Bearer ${newApiKey(ACCOUNT_A)}`],
        [`/api/jobs/${fakeId}/cancel`, 'POST', undefined],
      ] as const
    ).map(async ([path, method, auth]) => {
      const res = await api(path, { method, ...(auth ? { auth } : {}) })
      expect(res.status, `${method} ${path} with ${auth ?? 'no key'}`).toBe(401)
      expect(res.body.error.code).toBe('unauthorized')
      expect(res.headers.get('www-authenticate')).toBe('Bearer')
    })
    await Promise.all(checks)
  }, 60_000)

  it('runs a summarize job to done, observed through long-polls and cursors', async () => {
    const text = prose('main', 300)
    const windowChars = 2000
    const res = await submit({ text, windowChars })
    expect(res.status, res.text).toBe(202)
    mainJobId = res.body.jobId
    expect(mainJobId).toMatch(/^job_[0-9a-z]{8,11}[0-9a-f]{32}$/)
    expect(res.body).toMatchObject({
      kind: 'summarize',
      status: 'queued',
      statusUrl: `/api/jobs/${mainJobId}`,
      eventsUrl: `/api/jobs/${mainJobId}/events`,
    })
    expect(res.headers.get('location')).toBe(res.body.statusUrl)

    // Small pages, so the cursor moves through several requests however fast the job is.
    const { events, requests, last } = await follow(mainJobId, { limit: 8 })
    expect(requests).toBeGreaterThan(1)
    expect(last.status).toBe('complete')
    const n = events.length
    expectGaplessFrom(events, 1)
    expect(new Set(events.map((e) => e.seq)).size).toBe(n)
    expect(events[0]!.type).toBe('started')
    const terminal = events.filter((e) => ['done', 'error', 'canceled'].includes(e.type))
    expect(terminal.map((e) => e.type)).toEqual(['done'])
    expect(events.at(-1)!.type).toBe('done')

    const done = events.at(-1)!
    const result = done.data.result
    expect(typeof result.title).toBe('string')
    expect(result.title.length).toBeGreaterThan(0)
    expect(result.result).toBeUndefined() // not double-wrapped
    expect(typeof result.summary).toBe('string')
    expect(Array.isArray(result.keyPoints)).toBe(true)

    const windows = events.filter((e) => e.type === 'window_complete')
    expect(windows.length).toBeGreaterThanOrEqual(3)
    expect(windows.map((e) => e.data.index)).toEqual(windows.map((_, i) => i))
    for (const w of windows) expect(w.data.total).toBe(windows.length)
    expect(result.windows).toHaveLength(windows.length)
    expect(result.windows.map((w: { summary: string }) => w.summary)).toEqual(windows.map((w) => w.data.summary))

    // Status: complete, with the same result, an ETag, and 304 for If-None-Match.
    const status = await api(`/api/jobs/${mainJobId}`, { key: keyA })
    expect(status.status).toBe(200)
    expect(status.body).toMatchObject({ jobId: mainJobId, status: 'complete', lastSeq: n, error: null, cancelRequested: false })
    expect(status.body.result).toEqual(result)
    const etag = status.headers.get('etag')
    expect(etag).toMatch(/^".+"$/)
    const notModified = await api(`/api/jobs/${mainJobId}`, { key: keyA, headers: { 'if-none-match': etag! } })
    expect(notModified.status).toBe(304)
    expect(notModified.text).toBe('')
    expect(notModified.headers.get('etag')).toBe(etag)
    const otherTag = await api(`/api/jobs/${mainJobId}`, { key: keyA, headers: { 'if-none-match': '"something-else"' } })
    expect(otherTag.status).toBe(200)

    // Replay from the start gives the same events; a cursor in the middle gives only later ones.
    const replay = await api(`/api/jobs/${mainJobId}/events?after=0&limit=1000`, { key: keyA })
    expect(replay.status).toBe(200)
    expect(replay.body).toMatchObject({ done: true, next: n, status: 'complete', firstSeq: 1 })
    expect(replay.body.events).toEqual(events)
    const middle = Math.floor(n / 2)
    const later = await api(`/api/jobs/${mainJobId}/events?after=${middle}`, { key: keyA })
    expect(later.status).toBe(200)
    expect(later.body.events).toEqual(events.slice(middle))
    expect(later.body.events[0].seq).toBe(middle + 1)
    const atEnd = await api(`/api/jobs/${mainJobId}/events?after=${n}&wait=5`, { key: keyA })
    expect(atEnd.body).toMatchObject({ events: [], next: n, done: true })
    const pastEnd = await api(`/api/jobs/${mainJobId}/events?after=${n + 1}`, { key: keyA })
    expect(pastEnd.status).toBe(400)
    expect(pastEnd.body.error.code).toBe('invalid_cursor')
  }, 120_000)

  it('answers 409 job_finished to canceling a finished job', async () => {
    const res = await api(`/api/jobs/${mainJobId}/cancel`, { key: keyA, method: 'POST' })
    expect(res.status, res.text).toBe(409)
    expect(res.body).toMatchObject({ error: { code: 'job_finished' }, status: 'complete' })
  }, 60_000)

  it("hides one account's job from another (404 on status, events and cancel)", async () => {
    await Promise.all(
      (
        [
          [`/api/jobs/${mainJobId}`, 'GET'],
          [`/api/jobs/${mainJobId}/events`, 'GET'],
          [`/api/jobs/${mainJobId}/cancel`, 'POST'],
        ] as const
      ).map(async ([path, method]) => {
        const res = await api(path, { key: keyB, method })
        expect(res.status, `${method} ${path}: ${res.text}`).toBe(404)
        expect(res.body.error.code).toBe('not_found')
        expect(res.text).not.toContain(ACCOUNT_A)
      }),
    )
    // Still the owner's, untouched.
    const mine = await api(`/api/jobs/${mainJobId}`, { key: keyA })
    expect(mine.body.status).toBe('complete')
  }, 60_000)

  it('cancels a running job: 202 or 200, then `canceled` as its terminal event; a second cancel is 409 job_finished', async () => {
    // The `ticker` test kind (listed by the shared server): it runs for minutes but mostly sleeps, where a long
    // summarize would keep netlify dev's CPU busy until the cancel lands. (A running summarize document's
    // 409 resource_locked naming its holder: the concurrent submits below, and lock-proof.test.ts.)
    const first = await api('/api/jobs', { key: keyA, body: { kind: 'ticker', input: { count: 1000, meanMs: 200 } } })
    expect(first.status, first.text).toBe(202)
    longJobId = first.body.jobId
    // Running once its first event (`started`) is in the feed: a long-poll, not a status poll.
    const started = await api(`/api/jobs/${longJobId}/events?after=0&wait=20`, { key: keyA })
    expect(started.body.events[0]).toMatchObject({ seq: 1, type: 'started' })

    // Cancel while it runs: 202 (asked) or 200 (canceled at once).
    const cancel = await cancelAccepted(longJobId)
    expect(cancel.body.cancelRequested).toBe(true)
    const { events, last } = await follow(longJobId, { after: started.body.next })
    expect(last.status, 'the job completed before the cancel took effect').toBe('canceled')
    expect(events.at(-1)).toMatchObject({ type: 'canceled' })
    expect(events.filter((e) => e.type === 'done')).toEqual([])
    const finished = await api(`/api/jobs/${longJobId}`, { key: keyA })
    expect(finished.body).toMatchObject({ status: 'canceled', lastSeq: events.at(-1)!.seq })
    expect(finished.body.result).toBeUndefined()
    expect(finished.body.finishedAt).not.toBeNull()

    const again = await api(`/api/jobs/${longJobId}/cancel`, { key: keyA, method: 'POST' })
    expect(again.status).toBe(409)
    expect(again.body).toMatchObject({ error: { code: 'job_finished' }, status: 'canceled' })
  }, 240_000)

  it('lets exactly one of two concurrent submits of the same text through', async () => {
    const text = prose('concurrent', 200)
    const [a, b] = await Promise.all([submit({ text, windowChars: 2000 }), submit({ text, windowChars: 2000 })])
    const statuses = [a.status, b.status].sort()
    expect(statuses, `${a.text}\n${b.text}`).toEqual([202, 409])
    const winner = a.status === 202 ? a : b
    const loser = a.status === 202 ? b : a
    expect(loser.body.error.code).toBe('resource_locked')
    expect(loser.body.holder.jobId).toBe(winner.body.jobId)
    const { last } = await follow(winner.body.jobId)
    expect(last.status).toBe('complete')
  }, 120_000)

  it('shows the jobs on the admin route with ADMIN_TOKEN, and 401 without it', async () => {
    const snapshot = await ourSnapshot()
    const byId = new Map<string, any>(snapshot.jobs.map((job: any) => [job.jobId, job]))
    expect(byId.get(mainJobId)).toMatchObject({ account: ACCOUNT_A, kind: 'summarize', status: 'complete', hasResult: true })
    expect(byId.get(longJobId)).toMatchObject({ account: ACCOUNT_A, status: 'canceled', hasResult: false })
    expect(snapshot.locks).toEqual([])
    const onlyComplete = await api('/api/admin/jobs?status=complete', { auth: adminAuth() })
    expect(onlyComplete.body.jobs.every((job: any) => job.status === 'complete')).toBe(true)

    for (const auth of [undefined, `Bearer ${secret()}`, `Bearer ${keyA}`]) {
      const refused = await api('/api/admin/jobs', auth ? { auth } : {})
      expect(refused.status, auth ?? 'no token').toBe(401)
      expect(refused.text).not.toContain(mainJobId)
    }
  }, 60_000)

  it('runs the scheduled reaper through `netlify functions:invoke`', async () => {
    const statuses = (jobs: any[]) => Object.fromEntries(jobs.map((job) => [job.jobId, job.status]))
    const before = await ourSnapshot()
    expect(statuses(before.jobs)).toMatchObject({ [mainJobId]: 'complete', [longJobId]: 'canceled' })
    const t0 = Date.now()
    const { cli, report } = await invokeReaper(dev.root, dev.port, sharedNetlifyDevOutput)
    timings.functionsInvokeMs = Date.now() - t0
    expect(cli.stdout.trim()).toBe('') // v2 scheduled function: netlify dev drops the body
    expect(cli.stderr).not.toMatch(/error/i)
    expectReportShape(report)
    expect(report.failed).toBe(0) // every job on the server so far finished on its own (or is live, with its worker)
    expect(report.unfinished).toBe(false)
    expect(await sharedNetlifyDevOutput()).toMatch(/POST \/\.netlify\/functions\/reaper/)
    // The reaper changed nothing of ours: every job as it was, no lock left.
    const after = await ourSnapshot()
    expect(statuses(after.jobs)).toEqual(statuses(before.jobs))
    expect(after.locks).toEqual([])
  }, 90_000)
})
