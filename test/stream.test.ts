/**
 * GET /api/jobs/:id/stream through the real function module over HTTP and the
 * real local Blobs server: framing, resuming by Last-Event-ID and ?after=,
 * the end marker and the 204 after it, bad input (nothing written), and a
 * running job followed across forced reconnects (STREAM_LIMIT_SECONDS=1).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { testApi } from './support/api.ts'
import { emitter, slow } from './support/kinds.ts'

const api = testApi({ kinds: [slow, emitter], accounts: { 'acct-a': 1000, 'acct-b': 1000 }, env: { STREAM_LIMIT_SECONDS: '1' } })
const { call } = api

beforeAll(() => api.start())
afterAll(() => api.stop())
beforeEach(() => {
  api.runWorkers = true
})

interface Frame {
  id?: string
  event?: string
  data?: string
  retry?: string
  comment?: string
}

/** Parses an SSE body into its frames (one per blank-line-separated block). */
function parseFrames(body: string): Frame[] {
  return body
    .split('\n\n')
    .filter((block) => block !== '')
    .map((block) => {
      const frame: Frame = {}
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) frame.comment = line.slice(1).trim()
        else {
          const at = line.indexOf(': ')
          frame[line.slice(0, at) as 'id' | 'event' | 'data' | 'retry'] = line.slice(at + 2)
        }
      }
      return frame
    })
}

const stream = (jobId: string, init: { lastEventId?: string; query?: string; key?: string | null } = {}) =>
  call(`/api/jobs/${jobId}/stream${init.query ?? ''}`, { key: init.key, headers: init.lastEventId === undefined ? {} : { 'Last-Event-ID': init.lastEventId } })

async function finishedJob(steps: number) {
  const res = await call('/api/jobs', { method: 'POST', json: { kind: 'slow', input: { steps, delayMs: 0 } } })
  const { jobId } = await res.json()
  const { events } = await api.follow(jobId)
  // The feed ends with the terminal event; the worker's clean-up (lock, indexes) may still be writing.
  await api.idle()
  return { jobId, events }
}

const ids = (frames: Frame[]) => frames.filter((f) => f.id !== undefined).map((f) => Number(f.id))

describe('GET /api/jobs/:id/stream', () => {
  it('frames every event as id, event, data (the feed event as JSON), after a retry hint, then end', async () => {
    const { jobId, events } = await finishedJob(12)
    const res = await stream(jobId)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8')
    expect(res.headers.get('cache-control')).toContain('no-cache')
    const frames = parseFrames(await res.text())
    expect(frames[0]).toEqual({ retry: '500' })
    const eventFrames = frames.slice(1, -1)
    expect(eventFrames).toEqual(events.map((e) => ({ id: String(e.seq), event: e.type, data: JSON.stringify(e) })))
    expect(frames.at(-1)).toEqual({ event: 'end', data: JSON.stringify({ status: 'complete', lastSeq: events.length }) })
  })

  it('resumes after Last-Event-ID or ?after=, the header winning (EventSource repeats the first URL)', async () => {
    const { jobId, events } = await finishedJob(12)
    const last = events.length
    const rest = (from: number) => Array.from({ length: last - from }, (_, i) => from + i + 1)
    expect(ids(parseFrames(await (await stream(jobId, { lastEventId: '5' })).text()))).toEqual(rest(5))
    expect(ids(parseFrames(await (await stream(jobId, { query: '?after=7' })).text()))).toEqual(rest(7))
    expect(ids(parseFrames(await (await stream(jobId, { query: '?after=2', lastEventId: '9' })).text()))).toEqual(rest(9))
    expect(ids(parseFrames(await (await stream(jobId, { lastEventId: '' })).text()))).toEqual(rest(0))
  })

  it('with ?as=message sends events unnamed (for onmessage), and takes the watch token as ?token=', async () => {
    const res = await call('/api/jobs', { method: 'POST', json: { kind: 'slow', input: { steps: 3, delayMs: 0 } } })
    const { jobId, watchToken } = await res.json()
    const { events } = await api.follow(jobId)
    const streamed = await call(`/api/jobs/${jobId}/stream?as=message&token=${encodeURIComponent(watchToken)}`, { key: null })
    expect(streamed.status).toBe(200)
    const frames = parseFrames(await streamed.text())
    expect(frames.slice(1, -1)).toEqual(events.map((e) => ({ id: String(e.seq), data: JSON.stringify(e) })))
    expect(frames.at(-1)?.event).toBe('end')
  })

  it('answers 204 to a reconnect after the terminal event, so EventSource stops', async () => {
    const { jobId, events } = await finishedJob(3)
    for (const init of [{ lastEventId: String(events.length) }, { query: `?after=${events.length}` }]) {
      const res = await stream(jobId, init)
      expect(res.status).toBe(204)
      expect(await res.text()).toBe('')
    }
  })

  it('follows a running job across forced reconnects: every seq exactly once, then end and 204', async () => {
    const res = await call('/api/jobs', { method: 'POST', json: { kind: 'slow', input: { steps: 25, delayMs: 120 } } })
    const { jobId } = await res.json()
    const seen: number[] = []
    let responses = 0
    let ended = false
    while (!ended && responses < 40) {
      const res = await stream(jobId, seen.length ? { lastEventId: String(seen.at(-1)) } : {})
      expect(res.status).toBe(200)
      responses++
      const frames = parseFrames(await res.text())
      seen.push(...ids(frames))
      ended = frames.at(-1)?.event === 'end'
    }
    expect(ended).toBe(true)
    expect(responses).toBeGreaterThanOrEqual(3) // 25 steps × 120 ms outlast two 1 s responses
    expect(seen).toEqual(seen.map((_, i) => i + 1))
    const { events } = await api.follow(jobId)
    expect(seen).toHaveLength(events.length)
    expect((await stream(jobId, { lastEventId: String(seen.at(-1)) })).status).toBe(204)
  })

  it('holds a queued job open until its limit, with nothing but the retry hint', async () => {
    api.runWorkers = false
    const res = await call('/api/jobs', { method: 'POST', json: { kind: 'slow', input: { steps: 1, delayMs: 0 } } })
    const { jobId } = await res.json()
    const frames = parseFrames(await (await stream(jobId)).text())
    expect(frames).toEqual([{ retry: '500' }])
    const past = await stream(jobId, { lastEventId: '1' })
    expect(past.status).toBe(400)
    expect((await past.json()).error.code).toBe('invalid_cursor')
  })

  it('refuses bad input with the error envelope and writes nothing', async () => {
    const { jobId } = await finishedJob(3)
    const before = await api.contents()
    const cases: [Response, number, string][] = [
      [await stream(jobId, { lastEventId: 'abc' }), 400, 'invalid_request'],
      [await stream(jobId, { lastEventId: '-1' }), 400, 'invalid_request'],
      [await stream(jobId, { lastEventId: '1e3' }), 400, 'invalid_request'],
      [await stream(jobId, { query: '?after=x' }), 400, 'invalid_request'],
      [await stream(jobId, { query: '?after=9999999999' }), 400, 'invalid_request'],
      [await stream(jobId, { query: '?as=json' }), 400, 'invalid_request'],
      [await stream(jobId, { lastEventId: '999' }), 400, 'invalid_cursor'],
      [await stream(jobId, { key: null }), 401, 'unauthorized'],
      [await stream(jobId, { key: api.key('acct-b') }), 404, 'not_found'],
      [await stream('job_nope'), 404, 'not_found'],
      [await call(`/api/jobs/${jobId}/stream`, { method: 'POST' }), 405, 'method_not_allowed'],
    ]
    for (const [res, status, code] of cases) {
      expect(res.status).toBe(status)
      const body = await res.json()
      expect(body.error.code).toBe(code)
      expect(body.error.message).toBeTypeOf('string')
    }
    // Another account's job answers exactly like a missing one.
    const foreign = await (await stream(jobId, { key: api.key('acct-b') })).text()
    const missing = await (await stream(jobId.replace(/.$/, (c: string) => (c === '0' ? '1' : '0')), { key: api.key('acct-b') })).text()
    expect(foreign).toBe(missing)
    expect(await api.contents()).toEqual(before)
  })

  it('a kind cannot emit the stream’s own frames (end, truncated) or the job’s events', async () => {
    const types = ['end', 'truncated', 'message', 'done', 'progress', 'cancel_requested', 'step']
    const res = await call('/api/jobs', { method: 'POST', json: { kind: 'emitter', input: { types } } })
    const { jobId } = await res.json()
    const { events } = await api.follow(jobId)
    expect(events.at(-1)!.data.result.refused).toEqual(types.slice(0, -1))
    expect(events.filter((e) => e.type === 'step')).toHaveLength(1)
  })
})
