/**
 * The browser/Node client (lib/client) against the real function modules over
 * HTTP and a real local Blobs server, plus fetches that fail on purpose. Time
 * is injected: every sleep the client asks for is recorded and returns at once.
 */
import { createHash } from 'node:crypto'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { systemClock } from '../lib/core/clock.ts'
import { createAccount } from '../lib/credits/index.ts'
import { ApiError, type ClientClock, type WatchItem, createClient } from '../lib/client/index.ts'
import type { BlobPort } from '../lib/storage/port.ts'
import { testApi } from './support/api.ts'
import { failing, slow } from './support/kinds.ts'

const api = testApi({ kinds: [slow, failing], adminToken: 'test-admin-token-0123456789abcdef', accounts: { 'client-a': 1000 } })
let store: BlobPort
let apiKey: string

beforeAll(async () => {
  await api.start()
  store = api.store
  apiKey = api.key('client-a')
})
afterAll(() => api.stop())
beforeEach(() => {
  api.runWorkers = true
})

/** A clock whose sleeps are recorded and take no time (they still honour abort). */
function recordingClock(now = () => Date.now()): ClientClock & { sleeps: number[] } {
  const sleeps: number[] = []
  return {
    sleeps,
    now,
    async sleep(ms, signal) {
      signal?.throwIfAborted()
      sleeps.push(ms)
      await new Promise((resolve) => setImmediate(resolve))
      signal?.throwIfAborted()
    },
  }
}

const text = (seed: string, sentences = 60) =>
  Array.from({ length: sentences }, (_, i) => `${seed} sentence ${i} explains how durable jobs keep their events in order.`).join(' ')

async function collect(iterator: AsyncIterable<WatchItem>) {
  const items: WatchItem[] = []
  for await (const item of iterator) items.push(item)
  return items
}

const seqs = (items: WatchItem[]) => items.flatMap((item) => (item.truncated ? [] : [item.seq]))
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** The whole log as the server keeps it, read in one request. */
async function serverLog(jobId: string) {
  const res = await fetch(`${api.url}/api/jobs/${jobId}/events?after=0&limit=1000`, { headers: { authorization: `Bearer ${apiKey}` } })
  return (await res.json()) as { events: { seq: number; type: string }[]; done: boolean; firstSeq: number }
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })
const envelope = (code: string, status: number, headers: Record<string, string> = {}) =>
  json({ error: { code, message: `${code} happened` } }, status, headers)
const feed = (events: { seq: number; type: string }[], next: number, done: boolean) => ({
  jobId: 'job_x',
  status: done ? 'complete' : 'running',
  firstSeq: 1,
  next,
  done,
  events: events.map((event) => ({ ...event, data: null, ts: 0 })),
})

/** A fetch that plays a script of answers (a Response, or an Error to throw) and records each URL. */
function scripted(answers: (Response | Error)[]) {
  const urls: string[] = []
  const fake: typeof fetch = async (input) => {
    urls.push(String(input))
    const next = answers.shift()
    if (!next) throw new Error('the script ran out')
    if (next instanceof Error) throw next
    return next
  }
  return { fetch: fake, urls }
}

describe('watchJob against the real feed', () => {
  it('yields every seq exactly once, in order, and ends at the terminal event', async () => {
    const clock = recordingClock()
    const client = createClient({ baseUrl: api.url, apiKey, clock })
    const submitted = await client.submitJob('summarize', { text: text('full'), windowChars: 500 })
    expect(submitted.joined).toBe(false)
    const items = await collect(client.watchJob(submitted.job.jobId, { waitSeconds: 2 }))
    const log = await serverLog(submitted.job.jobId)
    expect(log.done).toBe(true)
    expect(seqs(items)).toEqual(range(1, log.events.length))
    expect(items).toEqual(log.events)
    const types = items.map((item) => item.type)
    expect(types[0]).toBe('started')
    expect(types.filter((type) => type === 'window_complete').length).toBeGreaterThan(3)
    expect(types.at(-1)).toBe('done')
    // between polls it waited what Retry-After asked (1 s while the job was live), without sleeping for real
    expect(clock.sleeps.every((ms) => ms === 1000)).toBe(true)

    const job = await client.getJob(submitted.job.jobId)
    expect(job).toMatchObject({ jobId: submitted.job.jobId, status: 'complete', error: null })
    expect((job.result as { keyPoints: string[] }).keyPoints.length).toBeGreaterThan(0)
  })

  it('resumes from its cursor after a response is lost or cut mid-body: every seq exactly once', async () => {
    const calls: { after: number; dropped: 'answer' | 'body' | null; events: number }[] = []
    let feedCalls = 0
    const flaky: typeof fetch = async (input, init) => {
      const url = new URL(String(input))
      if (!url.pathname.endsWith('/events')) return fetch(input, init)
      feedCalls++
      const res = await fetch(input, init) // the server always answers: what is lost is its answer
      const body = await res.text()
      const events = res.ok ? (JSON.parse(body) as { events: unknown[] }).events.length : 0
      const call = { after: Number(url.searchParams.get('after')), dropped: null as 'answer' | 'body' | null, events }
      calls.push(call)
      if (feedCalls % 3 === 2) {
        call.dropped = 'answer'
        throw new TypeError('fetch failed: connection reset')
      }
      if (feedCalls % 3 === 0) {
        call.dropped = 'body'
        const half = new TextEncoder().encode(body.slice(0, Math.floor(body.length / 2)))
        const stream = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(half)
            controller.error(new TypeError('terminated: other side closed'))
          },
        })
        return new Response(stream, { status: res.status, headers: res.headers })
      }
      return new Response(body, { status: res.status, headers: res.headers })
    }
    const clock = recordingClock()
    const client = createClient({ baseUrl: api.url, apiKey, clock, fetch: flaky, random: () => 0.5 })
    const { job } = await client.submitJob('slow', { steps: 60, delayMs: 8 })
    const items = await collect(client.watchJob(job.jobId, { waitSeconds: 1 }))

    const log = await serverLog(job.jobId)
    expect(seqs(items)).toEqual(range(1, log.events.length))
    expect(items).toEqual(log.events)
    expect(items.at(-1)?.type).toBe('done')
    // drops really happened mid-feed, on answers that carried events, and each retry asked from the same cursor
    const dropped = calls.filter((call) => call.dropped)
    expect(dropped.filter((call) => call.events > 0).length).toBeGreaterThan(1)
    expect(dropped.some((call) => call.dropped === 'body' && call.events > 0)).toBe(true)
    calls.forEach((call, i) => {
      if (call.dropped && calls[i + 1]) expect(calls[i + 1]!.after).toBe(call.after)
    })
    // each failure waited a jittered backoff: random 0.5 of a 500 ms ceiling, then of 1000 ms for the
    // second failure in a row; a good answer starts over
    const backoffs = clock.sleeps.filter((ms) => ms !== 1000)
    expect(backoffs).toEqual(dropped.map((call) => (call.dropped === 'answer' ? 250 : 500)))
  })

  it('abort stops the iterator promptly while a long-poll is held open', async () => {
    api.runWorkers = false // the job stays queued: the server holds each poll for the whole wait
    const client = createClient({ baseUrl: api.url, apiKey })
    const { job } = await client.submitJob('slow', { steps: 1, delayMs: 0 })
    const controller = new AbortController()
    const started = Date.now()
    setTimeout(() => controller.abort(), 300)
    await expect(collect(client.watchJob(job.jobId, { signal: controller.signal, waitSeconds: 20 }))).rejects.toMatchObject({ name: 'AbortError' })
    expect(Date.now() - started).toBeLessThan(3000)
    await client.cancelJob(job.jobId)
  })

  it('yields a truncated marker when the log cap dropped events it had not read', async () => {
    process.env.EVENT_LOG_MAX_EVENTS = '200'
    try {
      const client = createClient({ baseUrl: api.url, apiKey, clock: recordingClock() })
      const { job } = await client.submitJob('slow', { steps: 230, delayMs: 0 })
      await collect(client.watchJob(job.jobId, { after: 0, waitSeconds: 2, signal: AbortSignal.timeout(20_000) })) // wait for the end
      const log = await serverLog(job.jobId)
      expect(log.firstSeq).toBeGreaterThan(1)
      const items = await collect(client.watchJob(job.jobId, { after: 0 }))
      expect(items[0]).toEqual({ type: 'truncated', truncated: { droppedBefore: log.firstSeq, firstSeq: log.firstSeq } })
      expect(seqs(items)).toEqual(range(log.firstSeq, log.events.at(-1)!.seq))
      expect(items.at(-1)?.type).toBe('done')
    } finally {
      delete process.env.EVENT_LOG_MAX_EVENTS
    }
  })
})

describe('watchJob retries: Retry-After and backoff (injected clock, no real sleeps)', () => {
  it('429/503/network errors wait growing, jittered delays within bounds, and at least Retry-After', async () => {
    const failures: (Response | Error)[] = [
      envelope('storage_unavailable', 503, { 'retry-after': '3' }),
      envelope('rate_limited', 429),
      new TypeError('fetch failed'),
      envelope('rate_limited', 429),
      new Response('<html>bad gateway</html>', { status: 502 }),
      envelope('storage_unavailable', 503),
      envelope('rate_limited', 429),
      envelope('rate_limited', 429),
      envelope('rate_limited', 429),
    ]
    const { fetch: fake, urls } = scripted([
      ...failures,
      json(feed([{ seq: 1, type: 'started' }], 1, false), 200, { 'retry-after': '2' }),
      envelope('rate_limited', 429),
      json(feed([{ seq: 2, type: 'done' }], 2, true)),
    ])
    const randoms = [0.9, 0.3, 0.99, 0.6, 0.95, 0.2, 0.999, 0.999, 0.999, 0.7]
    const clock = recordingClock()
    const client = createClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fake, clock, random: () => randoms.shift()!, backoff: { baseMs: 500, maxMs: 30_000 } })
    const items = await collect(client.watchJob('job_x', { waitSeconds: 20 }))

    expect(seqs(items)).toEqual([1, 2])
    const ceilings = failures.map((_, n) => Math.min(30_000, 500 * 2 ** n)) // 500, 1000, … 64 000 → capped at 30 000
    const backoffs = clock.sleeps.slice(0, failures.length)
    backoffs.forEach((ms, n) => {
      expect(ms).toBeGreaterThanOrEqual(0)
      expect(ms).toBeLessThanOrEqual(n === 0 ? 3000 : ceilings[n]!)
    })
    expect(backoffs[0]).toBe(3000) // Retry-After: 3 beats the 0.9 × 500 jitter
    const expected = [0.3 * 1000, 0.99 * 2000, 0.6 * 4000, 0.95 * 8000, 0.2 * 16_000, 0.999 * 30_000, 0.999 * 30_000, 0.999 * 30_000]
    expect(backoffs.slice(1)).toEqual(expected.map((ms) => expect.closeTo(ms, 6)))
    // a 200 asked for 2 s before the next poll; the next failure starts the backoff over
    expect(clock.sleeps.slice(failures.length)).toEqual([2000, expect.closeTo(0.7 * 500, 6)])
    // every retry asked from the same cursor; the cursor moved only after a good answer
    expect(urls.map((url) => new URL(url).searchParams.get('after'))).toEqual([...failures.map(() => '0'), '0', '1', '1'])
    expect(new URL(urls[0]!).searchParams.get('wait')).toBe('20')
  })

  it('with the same random draw, consecutive failures wait twice as long each time, up to the cap', async () => {
    const { fetch: fake } = scripted([
      ...Array.from({ length: 8 }, () => envelope('storage_unavailable', 503)),
      json(feed([{ seq: 1, type: 'done' }], 1, true)),
    ])
    const clock = recordingClock()
    const client = createClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fake, clock, random: () => 0.5, backoff: { baseMs: 200, maxMs: 10_000 } })
    expect(seqs(await collect(client.watchJob('job_x')))).toEqual([1])
    expect(clock.sleeps).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000])
  })

  it('Retry-After as an HTTP date uses the clock, and is capped at maxMs', async () => {
    const now = Date.UTC(2026, 0, 1, 12, 0, 0)
    const { fetch: fake } = scripted([
      envelope('storage_unavailable', 503, { 'retry-after': new Date(now + 5000).toUTCString() }),
      envelope('rate_limited', 429, { 'retry-after': '3600' }),
      json(feed([{ seq: 1, type: 'done' }], 1, true)),
    ])
    const clock = recordingClock(() => now)
    const client = createClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fake, clock, random: () => 0, backoff: { maxMs: 10_000 } })
    expect(seqs(await collect(client.watchJob('job_x')))).toEqual([1])
    expect(clock.sleeps).toEqual([5000, 10_000])
  })

  it('deduplicates by seq if a feed ever repeats events', async () => {
    const { fetch: fake } = scripted([
      json(feed([{ seq: 1, type: 'started' }, { seq: 2, type: 'step' }, { seq: 3, type: 'step' }], 3, false)),
      json(feed([{ seq: 2, type: 'step' }, { seq: 3, type: 'step' }, { seq: 4, type: 'done' }], 4, true)),
    ])
    const client = createClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fake, clock: recordingClock() })
    expect(seqs(await collect(client.watchJob('job_x')))).toEqual([1, 2, 3, 4])
  })

  it('does not retry 4xx answers: 404 rejects with an ApiError', async () => {
    const { fetch: fake, urls } = scripted([envelope('not_found', 404)])
    const client = createClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fake, clock: recordingClock() })
    await expect(collect(client.watchJob('job_x'))).rejects.toMatchObject({ name: 'ApiError', status: 404, code: 'not_found' })
    expect(urls).toHaveLength(1)
  })

  it('abort during a backoff sleep rejects at once (real clock)', async () => {
    const always503: typeof fetch = async () => envelope('storage_unavailable', 503, { 'retry-after': '30' })
    const client = createClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: always503 })
    const controller = new AbortController()
    const started = Date.now()
    setTimeout(() => controller.abort(), 50)
    await expect(collect(client.watchJob('job_x', { signal: controller.signal }))).rejects.toMatchObject({ name: 'AbortError' })
    expect(Date.now() - started).toBeLessThan(1000)
  })
})

describe('submitJob, getJob, cancelJob and ApiError', () => {
  it('a second submit of the same text joins the running job', async () => {
    api.runWorkers = false // keep the first job live
    const client = createClient({ baseUrl: api.url, apiKey })
    const doc = { text: text('double click') }
    const first = await client.submitJob('summarize', doc)
    expect(first).toMatchObject({ joined: false, job: { status: 'queued', replayed: false } })
    const second = await client.submitJob('summarize', doc)
    expect(second).toEqual({
      joined: true,
      job: { jobId: first.job.jobId, statusUrl: first.job.statusUrl, eventsUrl: first.job.eventsUrl, expiresAt: expect.any(String) },
    })
    const canceled = await client.cancelJob(first.job.jobId)
    expect(canceled).toMatchObject({ jobId: first.job.jobId, status: 'canceled' })
    const again = await client.cancelJob(first.job.jobId).catch((error: unknown) => error)
    expect(again).toBeInstanceOf(ApiError)
    expect(again).toMatchObject({ status: 409, code: 'job_finished' })
  })

  it('an Idempotency-Key replay is reported as replayed', async () => {
    const client = createClient({ baseUrl: api.url, apiKey })
    const input = { steps: 1, delayMs: 0 }
    const first = await client.submitJob('slow', input, { idempotencyKey: 'client-test-1', clientJobId: 'cj-1', sourceTaskId: 'task-1' })
    const replay = await client.submitJob('slow', input, { idempotencyKey: 'client-test-1', clientJobId: 'cj-1', sourceTaskId: 'task-1' })
    expect(replay).toMatchObject({ joined: false, job: { jobId: first.job.jobId, replayed: true } })
    const job = await client.getJob(first.job.jobId)
    expect(job).toMatchObject({ sourceTaskId: 'task-1', clientJobId: 'cj-1' })
  })

  it('error answers become ApiError with status, code, message and body', async () => {
    const client = createClient({ baseUrl: api.url, apiKey })
    const bad = await client.submitJob('summarize', { text: 42 }).catch((error: unknown) => error)
    expect(bad).toBeInstanceOf(ApiError)
    expect(bad).toMatchObject({ name: 'ApiError', status: 400, code: 'invalid_request', message: expect.any(String) })
    expect((bad as ApiError).body).toMatchObject({ error: { code: 'invalid_request' }, issues: [{ path: 'input.text' }] })

    await expect(client.submitJob('teleport', {})).rejects.toMatchObject({ status: 400, code: 'unknown_kind' })
    await expect(client.getJob(`job_${'0'.repeat(8)}${'a'.repeat(32)}`)).rejects.toMatchObject({ status: 404, code: 'not_found' })
    await expect(createClient({ baseUrl: api.url, apiKey: 'nonsense' }).getJob('job_x')).rejects.toMatchObject({ status: 401, code: 'unauthorized' })
    const { job } = await client.submitJob('slow', { steps: 1, delayMs: 0 })
    await expect(collect(client.watchJob(job.jobId, { after: 999 }))).rejects.toMatchObject({ status: 400, code: 'invalid_cursor' })
  })

  it('cancelJob asks again after 409 job_busy, waiting its Retry-After, then gives up', async () => {
    const busy = () => envelope('job_busy', 409, { 'retry-after': '1' })
    const { fetch: fake, urls } = scripted([busy(), busy(), json({ jobId: 'job_x', status: 'running', cancelRequested: true }, 202)])
    const clock = recordingClock()
    const client = createClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fake, clock, random: () => 0.5 })
    expect(await client.cancelJob('job_x')).toMatchObject({ cancelRequested: true })
    expect(urls).toEqual(Array(3).fill('http://api.test/api/jobs/job_x/cancel'))
    expect(clock.sleeps).toEqual([1000, 1000])

    const { fetch: alwaysBusy, urls: tries } = scripted(Array.from({ length: 10 }, busy))
    const stubborn = createClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: alwaysBusy, clock: recordingClock() })
    await expect(stubborn.cancelJob('job_x')).rejects.toMatchObject({ status: 409, code: 'job_busy' })
    expect(tries).toHaveLength(6)
  })

  it('a non-JSON error answer still becomes an ApiError', async () => {
    const { fetch: fake } = scripted([new Response('<html>gateway timeout</html>', { status: 504, statusText: 'Gateway Timeout', headers: { 'retry-after': '7' } })])
    const error = await createClient({ apiKey: 'k', fetch: fake }).getJob('job_x').catch((e: unknown) => e)
    expect(error).toMatchObject({ status: 504, code: 'http_504', body: '<html>gateway timeout</html>', retryAfter: 7 })
  })
})

describe('downloadAsset', () => {
  it('downloads a rendered PNG by its URL or id, with the key; another account gets 404', async () => {
    const client = createClient({ baseUrl: api.url, apiKey, clock: recordingClock() })
    const { job } = await client.submitJob('render', { width: 40, height: 24, maxIterations: 50 })
    const items = await collect(client.watchJob(job.jobId, { waitSeconds: 2, signal: AbortSignal.timeout(20_000) }))
    const done = items.at(-1) as { type: string; data: { result: { assetId: string; url: string }; assets: { assetId: string; bytes: number; sha256: string }[] } }
    expect(done.type).toBe('done')
    const { assetId, url } = done.data.result
    expect(url).toBe(`/api/assets/${assetId}`)

    const blob = await client.downloadAsset(url)
    expect(blob.type).toBe('image/png')
    const bytes = new Uint8Array(await blob.arrayBuffer())
    expect(bytes.byteLength).toBe(done.data.assets[0]!.bytes)
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(done.data.assets[0]!.sha256)
    expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
    const ihdr = new DataView(bytes.buffer, bytes.byteOffset + 16, 8)
    expect([ihdr.getUint32(0), ihdr.getUint32(4)]).toEqual([40, 24])
    // by id, and by the URL with the client's baseUrl in front: the same bytes
    expect((await client.downloadAsset(assetId)).size).toBe(bytes.byteLength)
    expect((await client.downloadAsset(`${api.url}${url}`)).size).toBe(bytes.byteLength)

    await createAccount(store, systemClock, 'client-b', 10)
    const other = createClient({ baseUrl: api.url, apiKey: await api.createKey('client-b') })
    await expect(other.downloadAsset(url)).rejects.toMatchObject({ name: 'ApiError', status: 404, code: 'not_found' })
    await expect(client.downloadAsset(`asset_${'0'.repeat(8)}${'a'.repeat(32)}`)).rejects.toMatchObject({ status: 404, code: 'not_found' })
  })

  it('sends the key only to its own API: anything but an asset id or asset URL throws before any request', async () => {
    const { fetch: fake, urls } = scripted([new Response(new Uint8Array([1, 2, 3]), { headers: { 'content-type': 'image/png' } })])
    const client = createClient({ baseUrl: 'http://api.test', apiKey: 'k', fetch: fake })
    for (const bad of ['https://elsewhere.test/api/assets/asset_abc', '//elsewhere.test/api/assets/asset_abc', '/api/jobs/job_x', '/api/assets/asset_abc/../../x', 'asset_a?b', '']) {
      await expect(client.downloadAsset(bad)).rejects.toBeInstanceOf(TypeError)
    }
    expect(urls).toEqual([])
    const blob = await client.downloadAsset('http://api.test/api/assets/asset_abc', { signal: AbortSignal.timeout(5000) })
    expect(blob).toMatchObject({ size: 3, type: 'image/png' })
    expect(urls).toEqual(['http://api.test/api/assets/asset_abc'])
  })
})
