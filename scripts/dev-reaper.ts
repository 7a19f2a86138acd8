/**
 * The reaper's schedule for local development. `netlify dev` never fires
 * scheduled functions, so without this a job whose worker died (a dev restart
 * mid-job) would stay `running`, and its resource locked, forever. `npm run dev`
 * calls the reaper the way `netlify functions:invoke` does, on the period of
 * its production schedule.
 */

export const REAPER_PATH = '/.netlify/functions/reaper'
// What Netlify's scheduler (and `netlify functions:invoke`) sends as user agent.
const SCHEDULER_USER_AGENT = 'Netlify Clockwork'

export interface Timers {
  setTimeout(run: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export interface ReaperScheduleOptions {
  /** Where `netlify dev` serves, e.g. http://localhost:8888 */
  baseUrl: string
  /** Another scheduled function to call instead, e.g. the dispatcher's (and its name in log lines). */
  function?: { path: string; name: string }
  periodMs: number
  /** The first run; default one period, as a schedule would. */
  firstRunMs?: number
  fetch?: typeof fetch
  timers?: Timers
  log?: (line: string) => void
}

export interface ReaperSchedule {
  /** Runs the reaper now (the next run is still one period after this one ends). */
  runNow(): Promise<void>
  stop(): void
}

/** Calls the reaper every `periodMs`; a run starts only after the previous one ended. */
export function scheduleReaper(options: ReaperScheduleOptions): ReaperSchedule {
  const { baseUrl, periodMs, fetch: send = fetch, timers = globalThis as unknown as Timers } = options
  const { path, name } = options.function ?? { path: REAPER_PATH, name: 'reaper' }
  const log = (line: string) => (options.log ?? console.log)(line.replace(/^reaper:/, `${name}:`))
  let handle: unknown = null
  let stopped = false
  let running: Promise<void> | null = null
  let reachable = true

  const run = async () => {
    try {
      const res = await send(new URL(path, baseUrl), {
        method: 'POST',
        headers: { 'user-agent': SCHEDULER_USER_AGENT, 'content-type': 'application/json' },
        body: '{}',
      })
      const text = await res.text()
      if (!res.ok) log(`reaper: answered ${res.status} ${text.slice(0, 200)}`)
      else if (!reachable) log('reaper: reachable again')
      reachable = true
    } catch (error) {
      // netlify dev still starting, or stopped: say so once, keep the schedule.
      if (reachable) log(`reaper: ${baseUrl} not reachable (${error instanceof Error ? error.message : String(error)}); next try in ${Math.round(periodMs / 1000)} s`)
      reachable = false
    }
  }
  const arm = (ms: number) => {
    if (!stopped) handle = timers.setTimeout(() => void runNow(), ms)
  }
  const runNow = async () => {
    if (running) return running
    if (handle !== null) timers.clearTimeout(handle)
    handle = null
    running = run().finally(() => {
      running = null
      arm(periodMs)
    })
    return running
  }
  arm(options.firstRunMs ?? periodMs)
  return {
    runNow,
    stop() {
      stopped = true
      if (handle !== null) timers.clearTimeout(handle)
      handle = null
    },
  }
}

/**
 * The period of a schedule of the forms the project uses: `*\/N * * * *`
 * (every N minutes), `@hourly`, `@daily`. `DEV_REAPER_INTERVAL_SECONDS`
 * overrides it for local development.
 */
export function reaperPeriodMs(schedule: string, env: Record<string, string | undefined> = process.env): number {
  const override = env.DEV_REAPER_INTERVAL_SECONDS
  if (override !== undefined && override !== '') {
    const seconds = Number(override)
    if (!Number.isFinite(seconds) || seconds < 1) throw new Error('DEV_REAPER_INTERVAL_SECONDS must be a number of seconds ≥ 1')
    return seconds * 1000
  }
  if (schedule.trim() === '* * * * *') return 60_000
  const everyMinutes = /^\*\/(\d+) \* \* \* \*$/.exec(schedule.trim())?.[1]
  if (everyMinutes) return Number(everyMinutes) * 60_000
  if (schedule === '@hourly') return 3_600_000
  if (schedule === '@daily') return 86_400_000
  throw new Error(`cannot tell the period of the reaper's schedule "${schedule}"; set DEV_REAPER_INTERVAL_SECONDS`)
}
