/**
 * `npm run dev` runs the reaper on its schedule, because `netlify dev` never
 * fires scheduled functions: here the schedule drives the real reaper function
 * over HTTP, and a job whose worker never started ends `failed` instead of
 * staying live forever.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { config as reaperConfig } from '../netlify/functions/reaper.ts'
import { REAPER_PATH, type Timers, reaperPeriodMs, scheduleReaper } from '../scripts/dev-reaper.ts'
import { testApi } from './support/api.ts'
import { slow } from './support/kinds.ts'

/** Timers the test fires by hand: it sees what is armed, and for how long. */
function manualTimers() {
  let next = 1
  const armed = new Map<number, { run: () => void; ms: number }>()
  const timers: Timers = {
    setTimeout: (run, ms) => (armed.set(next, { run, ms }), next++),
    clearTimeout: (handle) => void armed.delete(handle as number),
  }
  return {
    timers,
    delays: () => [...armed.values()].map((t) => t.ms),
    /** Fires every armed timer, as if its time had come. */
    fire() {
      const due = [...armed.values()]
      armed.clear()
      for (const t of due) t.run()
    },
  }
}

describe('reaperPeriodMs', () => {
  it("follows the reaper function's own schedule unless DEV_REAPER_INTERVAL_SECONDS says otherwise", () => {
    expect(reaperPeriodMs(String(reaperConfig.schedule), {})).toBe(5 * 60_000)
    expect(reaperPeriodMs('*/15 * * * *', {})).toBe(15 * 60_000)
    expect(reaperPeriodMs('@hourly', {})).toBe(3_600_000)
    expect(reaperPeriodMs('*/5 * * * *', { DEV_REAPER_INTERVAL_SECONDS: '30' })).toBe(30_000)
    expect(() => reaperPeriodMs('*/5 * * * *', { DEV_REAPER_INTERVAL_SECONDS: 'soon' })).toThrow(/DEV_REAPER_INTERVAL_SECONDS/)
    expect(() => reaperPeriodMs('0 3 * * 1', {})).toThrow(/DEV_REAPER_INTERVAL_SECONDS/)
  })
})

describe('scheduleReaper', () => {
  const api = testApi({ kinds: [slow], accounts: { 'acct-dev': null }, env: { QUEUED_TIMEOUT_SECONDS: '1' } })
  let key: string

  beforeAll(async () => {
    await api.start()
    api.runWorkers = false // the worker never starts, as after a dev restart
    key = api.key('acct-dev')
  })
  afterAll(() => api.stop())

  const statusOf = async (jobId: string) => {
    const res = await fetch(`${api.url}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${key}` } })
    return ((await res.json()) as { status: string }).status
  }

  it('calls the real reaper on its period, which fails a job whose worker never came', async () => {
    const submitted = await fetch(`${api.url}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'slow', input: { steps: 1, delayMs: 0, resource: 'stuck' } }),
    })
    expect(submitted.status).toBe(202)
    const { jobId } = (await submitted.json()) as { jobId: string }
    await new Promise((resolve) => setTimeout(resolve, 1_100)) // past QUEUED_TIMEOUT_SECONDS on the real clock

    const clock = manualTimers()
    const calls: string[] = []
    const recordingFetch: typeof fetch = async (input, init) => {
      calls.push(`${init?.method} ${new URL(String(input)).pathname}`)
      return fetch(input, init)
    }
    const lines: string[] = []
    const schedule = scheduleReaper({ baseUrl: api.url, periodMs: 300_000, fetch: recordingFetch, timers: clock.timers, log: (l) => lines.push(l) })
    try {
      expect(clock.delays()).toEqual([300_000]) // nothing runs before its time
      expect(calls).toEqual([])
      expect(await statusOf(jobId)).toBe('queued')

      clock.fire()
      await expect.poll(() => calls.length).toBe(1)
      await expect.poll(() => statusOf(jobId), { timeout: 10_000 }).toBe('failed')
      await expect.poll(() => clock.delays()).toEqual([300_000]) // armed again for the next period
      expect(calls).toEqual([`POST ${REAPER_PATH}`])
      expect(lines).toEqual([])
    } finally {
      schedule.stop()
    }
    expect(clock.delays()).toEqual([])
  })

  it('keeps its schedule while the server is down, and never overlaps runs', async () => {
    // A server that holds the first request until told, then answers like the reaper.
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    let requests = 0
    const server = createServer(async (_req, res) => {
      requests++
      if (requests === 1) await held
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo

    const lines: string[] = []
    const down = manualTimers()
    const unreachable = scheduleReaper({ baseUrl: 'http://127.0.0.1:9', periodMs: 1_000, firstRunMs: 10, timers: down.timers, log: (l) => lines.push(l) })
    expect(down.delays()).toEqual([10])
    down.fire()
    await expect.poll(() => down.delays()).toEqual([1_000])
    down.fire()
    await expect.poll(() => down.delays()).toEqual([1_000])
    unreachable.stop()
    expect(lines).toHaveLength(1) // said once, not on every try
    expect(lines[0]).toMatch(/not reachable/)

    const up = manualTimers()
    const schedule = scheduleReaper({ baseUrl: `http://127.0.0.1:${port}`, periodMs: 1_000, timers: up.timers, log: (l) => lines.push(l) })
    try {
      const first = schedule.runNow()
      const second = schedule.runNow() // while the first is still running: the same run
      await expect.poll(() => requests).toBe(1)
      expect(up.delays()).toEqual([]) // the next run is armed only when this one ends
      release()
      await Promise.all([first, second])
      expect(requests).toBe(1)
      expect(up.delays()).toEqual([1_000])
    } finally {
      schedule.stop()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  })
})
