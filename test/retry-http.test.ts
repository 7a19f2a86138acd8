/**
 * Retries over HTTP, through the real functions (every answer checked
 * against the OpenAPI document by the harness): a short wait slept by the
 * worker, a long one run by the dispatcher function, the status while
 * waiting (attempt, maxAttempts, nextAttemptAt, the last public error), and
 * cancel during a wait (200, refunded). The worker sleeps waits up to
 * RETRY_SLEEP_LIMIT_SECONDS, 1 s here (10 s by default: test/retry.test.ts
 * checks that boundary on a moved clock), so the long wait is 1.5 s of real time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { RetryableError } from '../lib/core/errors.ts'
import { defineJob } from '../lib/kinds/define.ts'
import { testApi } from './support/api.ts'

const DISPATCHER_PATH = '/.netlify/functions/dispatcher'

/** Attempt 1 asks to be retried after `waitMs`; attempt 2 completes. */
const flaky = defineJob({
  kind: 'flaky_http',
  cost: 3,
  input: z.strictObject({ waitMs: z.number().int().min(0), resource: z.string() }),
  lockKey: (input, account) => [account, 'flaky', input.resource],
  retry: { maxAttempts: 2 },
  async run({ input, attempt, emit }) {
    await emit('work', { attempt })
    if (attempt === 1) throw new RetryableError('upstream_busy', 'The upstream service is busy.', { retryAfterMs: input.waitMs })
    return { attempt }
  },
})

describe('retries over HTTP', () => {
  const api = testApi({ kinds: [flaky], accounts: { 'acct-retry': 100 }, env: { RETRY_SLEEP_LIMIT_SECONDS: '1' } })
  beforeAll(() => api.start())
  afterAll(() => api.stop())

  const submit = async (waitMs: number, resource: string) => {
    const res = await api.call('/api/jobs', { method: 'POST', json: { kind: 'flaky_http', input: { waitMs, resource } } })
    expect(res.status).toBe(202)
    return (await res.json()) as { jobId: string }
  }
  const status = async (jobId: string) => (await api.call(`/api/jobs/${jobId}`)).json()
  const balance = async () => (await (await api.call('/api/account')).json()).balance as number

  it('retries after a short wait in the same worker: both attempts in the feed, one charge', async () => {
    const before = await balance()
    const { jobId } = await submit(300, 'short')
    const { events, feed } = await api.follow(jobId)
    expect(feed.status).toBe('complete')
    expect(events.map((e) => e.type)).toEqual(['started', 'work', 'attempt_failed', 'retry_scheduled', 'started', 'work', 'done'])
    expect(events[2]!.data).toEqual({ attempt: 1, error: { code: 'upstream_busy', message: 'The upstream service is busy.' } })
    expect(events[3]!.data).toMatchObject({ attempt: 2 })
    // Due 300 ms after the failure, which is just before the event was written.
    const dueIn = Date.parse(events[3]!.data.at) - (events[3] as unknown as { ts: number }).ts
    expect(dueIn).toBeGreaterThan(0)
    expect(dueIn).toBeLessThanOrEqual(300)
    expect(await status(jobId)).toMatchObject({ status: 'complete', attempt: 2, maxAttempts: 2, nextAttemptAt: null, error: null })
    expect(await balance()).toBe(before - 3)
    await api.idle()
  })

  it('a long wait shows as retrying with when and why, and the dispatcher function runs the next attempt', async () => {
    const { jobId } = await submit(1_500, 'long') // past the 1 s this suite's worker sleeps
    await api.idle()
    const waiting = await status(jobId)
    expect(waiting).toMatchObject({ status: 'retrying', attempt: 1, maxAttempts: 2, error: { code: 'upstream_busy' } })
    const due = Date.parse(waiting.nextAttemptAt)
    const feed = await (await api.call(`/api/jobs/${jobId}/events?after=0`)).json()
    expect(feed).toMatchObject({ status: 'retrying', done: false })
    expect(feed.events.at(-1)).toMatchObject({ type: 'retry_scheduled', data: { attempt: 2, at: waiting.nextAttemptAt } })

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now()) + 50))
    const run = await (await api.call(DISPATCHER_PATH, { method: 'POST', key: null })).json()
    // Filed again to check a minute later that the attempt was claimed.
    expect(run).toMatchObject({ deferred: 1, itemsFailed: 0 })
    const { feed: last } = await api.follow(jobId)
    expect(last.status).toBe('complete')
    expect(await status(jobId)).toMatchObject({ status: 'complete', attempt: 2 })
    await api.idle()
  }, 30_000)

  it('cancel while it waits: 200 canceled at once, refunded, the resource free', async () => {
    const before = await balance()
    const { jobId } = await submit(600_000, 'cancel')
    await api.idle()
    expect((await status(jobId)).status).toBe('retrying')
    expect(await balance()).toBe(before - 3)
    const canceled = await api.call(`/api/jobs/${jobId}/cancel`, { method: 'POST' })
    expect(canceled.status).toBe(200)
    expect(await canceled.json()).toMatchObject({ status: 'canceled', attempt: 1, nextAttemptAt: null })
    expect(await balance()).toBe(before)
    // The resource is free for the next job.
    const next = await submit(0, 'cancel')
    expect((await api.follow(next.jobId)).feed.status).toBe('complete')
    await api.idle()
  })
})
