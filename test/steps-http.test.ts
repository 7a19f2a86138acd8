/**
 * Steps and continuation through the real functions over HTTP (every answer
 * checked against the OpenAPI document by the harness): with
 * INVOCATION_LIMIT_SECONDS=1 a job of 8 steps of 400 ms is handed over from
 * one background invocation to the next through the worker function's
 * signed call, and clients see one job: one status, one gap-free feed, one charge.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { defineJob } from '../lib/kinds/define.ts'
import { testApi } from './support/api.ts'

const STEP_MS = 400
/** How often each step's fn ran, by job and step. */
const runs = new Map<string, number>()

const stepped = defineJob({
  kind: 'stepped_http',
  cost: 2,
  input: z.strictObject({ steps: z.number().int().min(1).max(20) }),
  async run({ jobId, input, step }) {
    const done: number[] = []
    for (let i = 0; i < input.steps; i++) {
      done.push(
        await step(`part-${i}`, async () => {
          runs.set(`${jobId}/${i}`, (runs.get(`${jobId}/${i}`) ?? 0) + 1)
          await new Promise((resolve) => setTimeout(resolve, STEP_MS))
          return i
        }),
      )
    }
    return { done }
  },
})

describe('steps over HTTP', () => {
  const api = testApi({ kinds: [stepped], accounts: { 'acct-steps': 100 }, env: { INVOCATION_LIMIT_SECONDS: '1' } })
  beforeAll(() => api.start())
  afterAll(() => api.stop())

  it('a job longer than the invocation limit is continued in fresh invocations: each step once, one feed, one charge', async () => {
    const res = await api.call('/api/jobs', { method: 'POST', json: { kind: 'stepped_http', input: { steps: 8 } } })
    expect(res.status).toBe(202)
    const { jobId } = (await res.json()) as { jobId: string }
    const { events, feed } = await api.follow(jobId)
    expect(feed.status).toBe('complete')
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1))
    expect(events.filter((e) => e.type === 'started')).toHaveLength(1)
    // At most 3 steps of 400 ms start within a second: 8 steps need at least 3 invocations.
    const continued = events.filter((e) => e.type === 'continued').map((e) => e.data.invocation)
    expect(continued.length).toBeGreaterThanOrEqual(2)
    expect(continued).toEqual(continued.map((_, i) => i + 2))
    expect(events.filter((e) => e.type === 'step_completed').map((e) => e.data.name)).toEqual(Array.from({ length: 8 }, (_, i) => `part-${i}`))
    expect(Array.from({ length: 8 }, (_, i) => runs.get(`${jobId}/${i}`))).toEqual(Array(8).fill(1))
    const status = await (await api.call(`/api/jobs/${jobId}`)).json()
    expect(status).toMatchObject({ status: 'complete', attempt: 1, steps: { completed: 8, invocation: continued.length + 1 }, result: { done: [0, 1, 2, 3, 4, 5, 6, 7] } })
    expect((await (await api.call('/api/account')).json()).balance).toBe(98)
    await api.idle()
  })
})
