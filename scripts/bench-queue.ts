/**
 * Queue instead of refuse: the storage cost of handing a resource to the
 * next queued job and starting it, with 10 or 10 000 jobs waiting in the
 * resource's line (must be flat: the hand-off reads the line's head, never
 * the line), and the time from the resource freeing to the next job's worker
 * being called with 20 ms charged to every storage operation (a stand-in
 * for Netlify Blobs round trips; the in-memory store is otherwise instant).
 * Runs on its own too: `node scripts/bench-queue.ts`.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import { releaseAndStartNext } from '../lib/jobs/launch.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { defineJob } from '../lib/kinds/define.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import { manualClock, testDeps } from '../test/support/deps.ts'
import { type StoreOp, hookedStore } from '../test/support/hooked-store.ts'
import type { DispatchRow } from './bench-dispatch.ts'

const OP_MS = 20
const render = defineJob({
  kind: 'bench_render',
  input: z.strictObject({ canvas: z.string(), n: z.number() }),
  lockKey: (input, account) => [account, 'canvas', input.canvas],
  onBusy: 'queue',
  async run() {
    return null
  },
})

/** A hand-off's storage operations, their total, and the time to the next job's worker call. */
export interface Measured { ops: Record<StoreOp, number>; total: number; ms: number }

async function measureWith(waiting: number): Promise<{ handOff: Measured; timed: Measured }> {
  const ops = { read: 0, create: 0, replace: 0, put: 0, delete: 0, list: 0 } as Record<StoreOp, number>
  let counting = false
  let delay = 0
  const store = hookedStore(memoryPort(), async (op) => {
    if (counting) ops[op]++
    if (delay) await sleep(delay)
  })
  const clock = manualClock()
  let onInvoke: (jobId: string) => void = () => {}
  const deps = testDeps(store, { clock, kinds: [render], invokeWorker: async (jobId) => onInvoke(jobId) })
  const submit = async (n: number) => (await submitJob(deps, 'bench', { kind: 'bench_render', input: { canvas: 'c1', n } }, null)).body.jobId
  const holder = await submit(0)
  const line: string[] = []
  for (let i = 1; i <= waiting + 3; i++) line.push(await submit(i))

  const handOn = async (from: string, to: string): Promise<Measured> => {
    for (const op of Object.keys(ops) as StoreOp[]) ops[op] = 0
    let startedAt = 0
    onInvoke = (jobId) => void (jobId === to && (startedAt = performance.now()))
    counting = true
    const t0 = performance.now()
    await releaseAndStartNext(deps, 'bench:canvas:c1', from)
    counting = false
    if (!startedAt) throw new Error(`${to} was not started`)
    return { ops: { ...ops }, total: Object.values(ops).reduce((a, b) => a + b, 0), ms: startedAt - t0 }
  }
  const handOff = await handOn(holder, line[0]!)
  delay = OP_MS
  // Median of three hand-offs: timers on a busy machine wake late.
  const runs = [await handOn(line[0]!, line[1]!), await handOn(line[1]!, line[2]!), await handOn(line[2]!, line[3]!)]
  const timed = runs.sort((a, b) => a.ms - b.ms)[1]!
  return { handOff, timed }
}

export const breakdown = (m: Measured) => (Object.entries(m.ops) as [StoreOp, number][]).filter(([, n]) => n > 0).map(([op, n]) => `${n} ${op}`).join(' + ')

export async function queueRows(): Promise<DispatchRow[]> {
  const small = await measureWith(10)
  const large = await measureWith(10_000)
  const flat = small.handOff.total === large.handOff.total
  const rows: DispatchRow[] = []
  for (const [waiting, m] of [[10, small], [10_000, large]] as const) {
    rows.push({
      scenario: `Hand-off: holder releases, next queued job started, ${waiting.toLocaleString('en')} queued on one resource`,
      budget: 'flat: same ops at 10 and 10 000 queued',
      measured: `${m.handOff.total} ops: ${breakdown(m.handOff)}`,
      bytes: '',
      time: '',
      ok: flat,
    })
  }
  for (const [waiting, m] of [[10, small], [10_000, large]] as const) {
    rows.push({
      scenario: `Resource freed → next queued job's worker called, ${OP_MS} ms injected per storage op (median of 3), ${waiting.toLocaleString('en')} queued`,
      budget: `≈ ops × ${OP_MS} ms, flat`,
      measured: `${m.timed.total} ops in the release`,
      bytes: '',
      time: `${m.timed.ms.toFixed(0)} ms`,
      ok: null,
    })
  }
  return rows
}

/** The rows as a Markdown table's lines, for a bench file run on its own. */
export const printRows = (rows: DispatchRow[]) => {
  for (const r of rows) console.log(`| ${r.scenario} | ${r.budget} | ${r.measured} | ${r.time} | ${r.ok === null ? '' : r.ok ? 'yes' : 'no'} |`)
}

if (import.meta.url === `file://${process.argv[1]}`) printRows(await queueRows())
