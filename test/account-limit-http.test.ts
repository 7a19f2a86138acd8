/**
 * The per-account limit over HTTP, through the real functions with
 * ACCOUNT_MAX_RUNNING in their environment (every answer checked against the
 * OpenAPI document by the harness): a submit over the limit answers 202
 * `queued` with `queue.waitingFor: "account"`, its status shows its place,
 * the jobs run one after the other, another account is not held up, and a
 * bad ACCOUNT_MAX_RUNNING refuses every request with 500 `misconfigured`
 * before writing anything.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { testApi } from './support/api.ts'
import { slow } from './support/kinds.ts'

describe('a limit on running jobs per account over HTTP', () => {
  const api = testApi({ kinds: [slow], accounts: { 'acct-limit': 1000, 'acct-other': 1000 }, env: { ACCOUNT_MAX_RUNNING: '1' } })
  beforeAll(() => api.start())
  afterAll(() => api.stop())

  const submit = (account: string, delayMs: number) =>
    api.call('/api/jobs', { method: 'POST', key: api.key(account), json: { kind: 'slow', input: { steps: 3, delayMs } } })

  it('queues the job over the limit with its place, runs the jobs one after the other, and does not hold up another account', async () => {
    const first = await (await submit('acct-limit', 1000)).json()
    const res = await submit('acct-limit', 50)
    expect(res.status).toBe(202)
    const second = await res.json()
    expect(second).toMatchObject({ status: 'queued', queue: { position: 1, ahead: null, waitingFor: 'account' } })
    const status = await (await api.call(`/api/jobs/${second.jobId}`, { key: api.key('acct-limit') })).json()
    expect(status).toMatchObject({ status: 'queued', startedAt: null, queue: { position: 1, waitingFor: 'account' } })
    // Another account has its own slots.
    const other = await (await submit('acct-other', 50)).json()
    expect(other.queue).toBeUndefined()

    const runs = []
    for (const job of [first, second]) {
      const { feed } = await api.follow(job.jobId, api.key('acct-limit'))
      expect(feed.status).toBe('complete')
      runs.push(await (await api.call(`/api/jobs/${job.jobId}`, { key: api.key('acct-limit') })).json())
    }
    expect(Date.parse(runs[1].startedAt)).toBeGreaterThanOrEqual(Date.parse(runs[0].finishedAt))
    expect((await api.follow(other.jobId, api.key('acct-other'))).feed.status).toBe('complete')
    await api.idle()
  })

  it.each(['0', '1001', 'two', '1.5'])('ACCOUNT_MAX_RUNNING=%s answers 500 misconfigured, writes nothing, and says why in the log', async (value) => {
    const logged: string[] = []
    vi.spyOn(console, 'error').mockImplementation((line: unknown) => void logged.push(String(line)))
    process.env.ACCOUNT_MAX_RUNNING = value
    try {
      const before = await api.contents()
      const res = await submit('acct-limit', 0)
      expect(res.status).toBe(500)
      expect((await res.json()).error.code).toBe('misconfigured')
      expect(await api.contents()).toEqual(before)
      expect(logged.join('\n')).toContain('ACCOUNT_MAX_RUNNING must be a whole number from 1 to 1000')
    } finally {
      process.env.ACCOUNT_MAX_RUNNING = '1'
      vi.restoreAllMocks()
    }
  })
})
