/**
 * `npm run dev` runs the dispatcher on its production schedule (every
 * minute), as it does the reaper: `netlify dev` fires neither.
 */
import { describe, expect, it } from 'vitest'
import { config as dispatcherConfig } from '../netlify/functions/dispatcher.ts'
import { type Timers, reaperPeriodMs, scheduleReaper } from '../scripts/dev-reaper.ts'

describe('the dispatcher under npm run dev', () => {
  it('is called at /.netlify/functions/dispatcher every minute, its own schedule, and names itself in log lines', async () => {
    const period = reaperPeriodMs(String(dispatcherConfig.schedule), {})
    expect(period).toBe(60_000)

    const armed: { run: () => void; ms: number }[] = []
    const timers: Timers = { setTimeout: (run, ms) => armed.push({ run, ms }), clearTimeout: () => {} }
    const calls: string[] = []
    const lines: string[] = []
    const answer = [new Response('{}', { status: 500 }), Response.json({ handled: 0 })]
    const schedule = scheduleReaper({
      baseUrl: 'http://localhost:8888',
      periodMs: period,
      function: { path: '/.netlify/functions/dispatcher', name: 'dispatcher' },
      fetch: async (input, init) => (calls.push(`${init?.method} ${new URL(String(input)).pathname}`), answer.shift()!),
      timers,
      log: (line) => lines.push(line),
    })
    try {
      expect(armed.map((t) => t.ms)).toEqual([60_000])
      await schedule.runNow()
      expect(calls).toEqual(['POST /.netlify/functions/dispatcher'])
      expect(lines).toEqual(['dispatcher: answered 500 {}'])
      await schedule.runNow()
      expect(calls).toHaveLength(2)
      expect(lines).toHaveLength(1)
    } finally {
      schedule.stop()
    }
  })
})
