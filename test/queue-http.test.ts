/**
 * Queue instead of refuse over HTTP, through the real functions (every
 * answer checked against the OpenAPI document by the harness): a queued
 * submit answers 202 `queued` with its place, status shows it, a queued job
 * is canceled at once (200), the others run one after the other in submit
 * order, and a bad `onBusy` is a 400 envelope that writes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testApi } from './support/api.ts'
import { slow } from './support/kinds.ts'

describe('queue instead of refuse over HTTP', () => {
  const api = testApi({ kinds: [slow], accounts: { 'acct-queue': 1000 } })
  beforeAll(() => api.start())
  afterAll(() => api.stop())

  const submit = (body: Record<string, unknown>, delayMs = 100) =>
    api.call('/api/jobs', { method: 'POST', json: { kind: 'slow', input: { steps: 3, delayMs, resource: 'q' }, ...body } })

  it('refuses a bad onBusy with a 400 envelope, writing nothing', async () => {
    const before = await api.contents()
    for (const onBusy of ['wait', 1, null]) {
      const res = await submit({ onBusy })
      expect(res.status, JSON.stringify(onBusy)).toBe(400)
      expect((await res.json()).error.code).toBe('invalid_request')
    }
    expect(await api.contents()).toEqual(before)
  })

  it('queues behind the holder, shows the place, cancels a queued job at once, and runs the rest in submit order', async () => {
    // Long enough (6 s) that every submit below finds it running.
    const holder = await (await submit({}, 2000)).json()
    const refused = await submit({})
    expect(refused.status).toBe(409)
    const queued = []
    for (let i = 0; i < 3; i++) {
      const res = await submit({ onBusy: 'queue' })
      expect(res.status).toBe(202)
      queued.push(await res.json())
    }
    expect(queued[0]).toMatchObject({ status: 'queued', queue: { position: 1, ahead: holder.jobId } })
    const status = await (await api.call(`/api/jobs/${queued[2].jobId}`)).json()
    expect(status).toMatchObject({ status: 'queued', queue: { position: 3, ahead: queued[1].jobId } })

    const canceled = await api.call(`/api/jobs/${queued[1].jobId}/cancel`, { method: 'POST' })
    expect(canceled.status).toBe(200)
    expect((await canceled.json()).status).toBe('canceled')

    const runs = []
    for (const job of [holder, queued[0], queued[2]]) {
      const { feed } = await api.follow(job.jobId)
      expect(feed.status).toBe('complete')
      runs.push(await (await api.call(`/api/jobs/${job.jobId}`)).json())
    }
    // One after the other: each started after the one before it finished.
    expect(Date.parse(runs[1].startedAt)).toBeGreaterThanOrEqual(Date.parse(runs[0].finishedAt))
    expect(Date.parse(runs[2].startedAt)).toBeGreaterThanOrEqual(Date.parse(runs[1].finishedAt))
    expect((await (await api.call(`/api/jobs/${queued[1].jobId}`)).json()).startedAt).toBeNull()
    await api.idle()
  })
})
