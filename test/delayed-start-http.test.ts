/**
 * Delayed starts over HTTP, through the real functions (every answer checked
 * against the OpenAPI document by the harness): submit answers `scheduled`
 * with `runAt`, bad start times get a 400 envelope and write nothing, and the
 * scheduled dispatcher function starts the job once its time has come.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testApi } from './support/api.ts'
import { slow } from './support/kinds.ts'

const DISPATCHER_PATH = '/.netlify/functions/dispatcher'

describe('delayed starts over HTTP', () => {
  const ADMIN = 'admin-token-for-delayed-start-tests'
  const api = testApi({ kinds: [slow], accounts: { 'acct-delay': 1000 }, adminToken: ADMIN })
  const admin = (path: string) => api.call(path, { key: null, headers: { authorization: `Bearer ${ADMIN}` } })
  beforeAll(() => api.start())
  afterAll(() => api.stop())

  const submit = (body: Record<string, unknown>) => api.call('/api/jobs', { method: 'POST', json: { kind: 'slow', input: { steps: 2, delayMs: 0, resource: 'r' }, ...body } })

  it('refuses a start in the past, too far ahead or given both ways with a 400 envelope, writing nothing', async () => {
    const before = await api.contents()
    const soon = new Date(Date.now() + 60_000).toISOString()
    for (const extra of [{ runAt: '2020-01-01T00:00:00Z' }, { runAt: new Date(Date.now() + 8 * 86_400_000).toISOString() }, { runAt: soon, delaySeconds: 60 }, { delaySeconds: -5 }]) {
      const res = await submit(extra)
      expect(res.status, JSON.stringify(extra)).toBe(400)
      expect((await res.json()).error.code).toBe('invalid_request')
    }
    expect(await api.contents()).toEqual(before)
  })

  it('answers scheduled with runAt, and the dispatcher starts the job once its time has come', async () => {
    const res = await submit({ delaySeconds: 2 })
    expect(res.status).toBe(202)
    const submitted = await res.json()
    expect(submitted.status).toBe('scheduled')
    // Before its time the dispatcher leaves it (asked at once: a loaded machine's slow calls below must not make it due).
    const early = await (await api.call(DISPATCHER_PATH, { method: 'POST', key: null })).json()
    expect(early.handled).toBe(0)
    const status = await (await api.call(`/api/jobs/${submitted.jobId}`)).json()
    expect(status).toMatchObject({ status: 'scheduled', startedAt: null })
    expect(Date.parse(status.runAt)).toBeGreaterThan(Date.parse(status.createdAt))
    const feed = await (await api.call(`/api/jobs/${submitted.jobId}/events?after=0`)).json()
    expect(feed).toMatchObject({ status: 'scheduled', events: [], done: false })
    // The operator sees it scheduled too, in its detail and among the live jobs.
    expect((await (await admin(`/api/admin/jobs/${submitted.jobId}`)).json()).job.status).toBe('scheduled')
    const live = await (await admin('/api/admin/search?status=scheduled')).json()
    expect(live.jobs.map((job: { jobId: string }) => job.jobId)).toEqual([submitted.jobId])

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(status.runAt) - Date.now()) + 50))

    const run = await (await api.call(DISPATCHER_PATH, { method: 'POST', key: null })).json()
    expect(run).toMatchObject({ handled: 1, itemsFailed: 0 })
    const { events, feed: last } = await api.follow(submitted.jobId)
    expect(last.status).toBe('complete')
    expect(events.at(-1)!.type).toBe('done')
    await api.idle()
  })

  it('cancels a scheduled job at once (200), and the dispatcher then starts nothing', async () => {
    const submitted = await (await submit({ delaySeconds: 1 })).json()
    const canceled = await api.call(`/api/jobs/${submitted.jobId}/cancel`, { method: 'POST' })
    expect(canceled.status).toBe(200)
    expect((await canceled.json()).status).toBe('canceled')
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    const run = await (await api.call(DISPATCHER_PATH, { method: 'POST', key: null })).json()
    expect(run.handled).toBe(1)
    expect((await (await api.call(`/api/jobs/${submitted.jobId}`)).json()).status).toBe('canceled')
  })
})
