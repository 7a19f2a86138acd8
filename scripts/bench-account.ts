/**
 * The per-account limit (ACCOUNT_MAX_RUNNING): the storage cost of a
 * submit with no limit, under the limit, and over it (waiting in the
 * account's line); the cost of giving a settled job's slot back and
 * starting the next waiting job with 10 or 10 000 waiting (must be flat:
 * the hand-off reads the line's head, never the line); and the time from
 * the slot freeing to the next job's worker being called with 20 ms charged
 * to every storage operation. Runs on its own too: `node scripts/bench-account.ts`.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { z } from 'zod'
import { giveBackAccountSlot } from '../lib/jobs/account-turn.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { defineJob } from '../lib/kinds/define.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import { manualClock, testDeps } from '../test/support/deps.ts'
import { type StoreOp, hookedStore } from '../test/support/hooked-store.ts'
import type { DispatchRow } from './bench-dispatch.ts'
import { type Measured, breakdown, printRows } from './bench-queue.ts'

const OP_MS = 20
const work = defineJob({
  kind: 'bench_work',
  input: z.strictObject({ n: z.number() }),
  async run() {
    return null
  },
})

function setup(limit: number | null) {
  const ops = { read: 0, create: 0, replace: 0, put: 0, delete: 0, list: 0 } as Record<StoreOp, number>
  const state = { counting: false, delay: 0 }
  const store = hookedStore(memoryPort(), async (op) => {
    if (state.counting) ops[op]++
    if (state.delay) await sleep(state.delay)
  })
  const clock = manualClock()
  let onInvoke: (jobId: string) => void = () => {}
  const deps = testDeps(store, { clock, kinds: [work], settings: { accountMaxRunning: limit }, invokeWorker: async (jobId) => onInvoke(jobId) })
  const submit = async (n: number) => (await submitJob(deps, 'bench', { kind: 'bench_work', input: { n } }, null)).body.jobId
  const measure = async (what: () => Promise<unknown>, startedJob?: string): Promise<Measured> => {
    for (const op of Object.keys(ops) as StoreOp[]) ops[op] = 0
    let startedAt = 0
    onInvoke = (jobId) => void (jobId === startedJob && (startedAt = performance.now()))
    state.counting = true
    const t0 = performance.now()
    await what()
    state.counting = false
    if (startedJob && !startedAt) throw new Error(`${startedJob} was not started`)
    return { ops: { ...ops }, total: Object.values(ops).reduce((a, b) => a + b, 0), ms: startedAt - t0 }
  }
  return { deps, clock, submit, measure, state }
}

async function submitCosts() {
  const free = setup(null)
  const limited = setup(1)
  await free.submit(0)
  await limited.submit(0) // holds the one slot
  const ofFree = await free.measure(() => free.submit(1))
  // The account's slots record exists (one of its two slots is taken): the steady state.
  const fresh = setup(2)
  await fresh.submit(0)
  const underLimit = await fresh.measure(() => fresh.submit(1))
  const overLimit = await limited.measure(() => limited.submit(1))
  return { ofFree, underLimit, overLimit }
}

async function handOffWith(waiting: number): Promise<{ handOff: Measured; timed: Measured }> {
  const t = setup(1)
  const holder = await t.submit(0)
  const line: string[] = []
  for (let i = 1; i <= waiting + 3; i++) line.push(await t.submit(i))
  const handOff = await t.measure(() => giveBackAccountSlot(t.deps, 'bench', holder), line[0])
  t.state.delay = OP_MS
  const runs = [
    await t.measure(() => giveBackAccountSlot(t.deps, 'bench', line[0]!), line[1]),
    await t.measure(() => giveBackAccountSlot(t.deps, 'bench', line[1]!), line[2]),
    await t.measure(() => giveBackAccountSlot(t.deps, 'bench', line[2]!), line[3]),
  ]
  return { handOff, timed: runs.sort((a, b) => a.ms - b.ms)[1]! }
}

export async function accountRows(): Promise<DispatchRow[]> {
  const rows: DispatchRow[] = []
  const submits = await submitCosts()
  for (const [what, m] of [
    ['no ACCOUNT_MAX_RUNNING', submits.ofFree],
    ['under ACCOUNT_MAX_RUNNING (takes a slot, starts)', submits.underLimit],
    ['over ACCOUNT_MAX_RUNNING (waits in the account line)', submits.overLimit],
  ] as const) {
    rows.push({ scenario: `Submit of a job without a lock, ${what}`, budget: 'O(1)', measured: `${m.total} ops: ${breakdown(m)}`, bytes: '', time: '', ok: null })
  }
  const small = await handOffWith(10)
  const large = await handOffWith(10_000)
  const flat = small.handOff.total === large.handOff.total
  for (const [waiting, m] of [[10, small], [10_000, large]] as const) {
    rows.push({
      scenario: `Account slot given back, next waiting job started, ${waiting.toLocaleString('en')} waiting for one account`,
      budget: 'flat: same ops at 10 and 10 000 waiting',
      measured: `${m.handOff.total} ops: ${breakdown(m.handOff)}`,
      bytes: '',
      time: '',
      ok: flat,
    })
  }
  for (const [waiting, m] of [[10, small], [10_000, large]] as const) {
    rows.push({
      scenario: `Account slot freed → next waiting job's worker called, ${OP_MS} ms injected per storage op (median of 3), ${waiting.toLocaleString('en')} waiting`,
      budget: `≈ ops × ${OP_MS} ms, flat`,
      measured: `${m.timed.total} ops`,
      bytes: '',
      time: `${m.timed.ms.toFixed(0)} ms`,
      ok: null,
    })
  }
  return rows
}

if (import.meta.url === `file://${process.argv[1]}`) printRows(await accountRows())
