/**
 * The dispatcher's storage cost against how much is scheduled: a run with
 * nothing due, and a run that starts 10 due jobs, with 10 or 10 000 delayed
 * jobs waiting for later. Both must be flat in what waits. Storage is the
 * atomic in-memory store behind a counting port (operations, not timings,
 * are the budget). Runs on its own too: `node scripts/bench-dispatch.ts`.
 */
import { performance } from 'node:perf_hooks'
import type { JobSpec } from '../lib/core/types.ts'
import { reap } from '../lib/reaper/reap.ts'
import { runDispatcher } from '../lib/schedule/dispatcher.ts'
import { addDue } from '../lib/schedule/due-index.ts'
import { dueHandlers } from '../lib/schedule/handlers.ts'
import { keys } from '../lib/storage/keys.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import type { StoreOp } from '../test/support/hooked-store.ts'
import { hookedStore } from '../test/support/hooked-store.ts'
import { manualClock, testDeps } from '../test/support/deps.ts'

export interface DispatchRow { scenario: string; budget: string; measured: string; bytes: string; time: string; ok: boolean | null }

interface Measured { ops: Record<StoreOp, number>; ms: number; started: number }

const DUE_NOW = 10

async function measureWith(waiting: number): Promise<{ idle: Measured; starting: Measured; reaper: Measured }> {
  const ops = { read: 0, create: 0, replace: 0, put: 0, delete: 0, list: 0 } as Record<StoreOp, number>
  const store = hookedStore(memoryPort(), (op) => void ops[op]++)
  const clock = manualClock()
  let started = 0
  const deps = testDeps(store, { clock, invokeWorker: async () => void started++ })
  const now = clock.now()
  const schedule = async (n: number, runAt: number) => {
    const spec: JobSpec = {
      jobId: `job_bench${String(n).padStart(6, '0')}`, account: 'bench', kind: 'summarize', input: {}, createdAt: now,
      lockKey: `bench:r${n}`, sourceTaskId: null, clientJobId: null, idempotencyRecord: null, creditCharged: 0, reservation: null, runAt,
    }
    await store.put(keys.waitingSpec(spec.jobId), JSON.stringify(spec))
    await addDue(store, runAt, 'start', spec.jobId)
  }
  // Spread over the week ahead, from an hour on: nothing of it is due during the bench.
  for (let i = 0; i < waiting; i++) await schedule(i, now + 3600_000 + Math.floor((i * 7 * 86_400_000) / waiting))
  await runDispatcher(deps, dueHandlers) // the first run has no cursor yet
  clock.advance(60_000)

  const run = async (): Promise<Measured> => {
    for (const op of Object.keys(ops) as StoreOp[]) ops[op] = 0
    started = 0
    const t0 = performance.now()
    await runDispatcher(deps, dueHandlers)
    return { ops: { ...ops }, ms: performance.now() - t0, started }
  }
  const idle = await run()
  // The reaper walks the live index only: waiting jobs are in `waiting/`, out of its way.
  for (const op of Object.keys(ops) as StoreOp[]) ops[op] = 0
  const r0 = performance.now()
  await reap(deps)
  const reaper = { ops: { ...ops }, ms: performance.now() - r0, started: 0 }
  for (let i = 0; i < DUE_NOW; i++) await schedule(waiting + i, clock.now() - 1000 - i)
  clock.advance(60_000)
  const starting = await run()
  if (starting.started !== DUE_NOW) throw new Error(`expected ${DUE_NOW} starts, saw ${starting.started}`)
  return { idle, starting, reaper }
}

const totalOps = (m: Measured) => Object.values(m.ops).reduce((a, b) => a + b, 0)
const breakdown = (m: Measured, per = 1) =>
  (Object.entries(m.ops) as [StoreOp, number][]).filter(([, n]) => n > 0).map(([op, n]) => `${Number((n / per).toFixed(2))} ${op}`).join(' + ')

export async function dispatchRows(): Promise<DispatchRow[]> {
  const small = await measureWith(10)
  const large = await measureWith(10_000)
  const idleFlat = totalOps(small.idle) === totalOps(large.idle)
  const startFlat = totalOps(small.starting) === totalOps(large.starting)
  const rows: DispatchRow[] = []
  for (const [waiting, m] of [[10, small], [10_000, large]] as const) {
    rows.push({
      scenario: `Dispatcher run with nothing due, ${waiting.toLocaleString('en')} delayed jobs waiting (later)`,
      budget: 'flat: same ops at 10 and 10 000 waiting',
      measured: `${totalOps(m.idle)} ops: ${breakdown(m.idle)}`,
      bytes: '',
      time: `${m.idle.ms.toFixed(2)} ms`,
      ok: idleFlat,
    })
  }
  for (const [waiting, m] of [[10, small], [10_000, large]] as const) {
    rows.push({
      scenario: `Reaper run, ${waiting.toLocaleString('en')} delayed jobs waiting (specs in waiting/, not the live index)`,
      budget: 'flat: same ops at 10 and 10 000 waiting (was 20 003 ops at 10 000)',
      measured: `${totalOps(m.reaper)} ops: ${breakdown(m.reaper)}`,
      bytes: '',
      time: `${m.reaper.ms.toFixed(2)} ms`,
      ok: totalOps(small.reaper) === totalOps(large.reaper),
    })
  }
  for (const [waiting, m] of [[10, small], [10_000, large]] as const) {
    rows.push({
      scenario: `Dispatcher run starting ${DUE_NOW} due jobs, ${waiting.toLocaleString('en')} delayed jobs waiting (later): per started job`,
      budget: 'flat: same ops at 10 and 10 000 waiting',
      measured: `${Number((totalOps(m.starting) / DUE_NOW).toFixed(2))} ops: ${breakdown(m.starting, DUE_NOW)}`,
      bytes: '',
      time: `${(m.starting.ms / DUE_NOW).toFixed(2)} ms`,
      ok: startFlat,
    })
  }
  return rows
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await dispatchRows()) console.log(`| ${r.scenario} | ${r.budget} | ${r.measured} | ${r.time} | ${r.ok ? 'yes' : 'no'} |`)
}
