/**
 * What durable steps cost in storage operations: a step (its read, its
 * create-only store, the state write of its `step_completed` event), and a
 * continuation into a fresh invocation (the hand-over, the call, the next
 * invocation's spec read, lock renewal and claim), apart from the re-read of
 * each step already stored that every new invocation makes as the handler
 * runs from the top. Storage is the atomic in-memory store behind a counting
 * port. Runs on its own too: `node scripts/bench-steps.ts`.
 */
import { z } from 'zod'
import { createAccount } from '../lib/credits/index.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { runJob } from '../lib/jobs/worker.ts'
import { defineJob } from '../lib/kinds/define.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import { type StoreOp, hookedStore } from '../test/support/hooked-store.ts'
import { manualClock, testDeps } from '../test/support/deps.ts'

export interface StepsRow { scenario: string; budget: string; measured: string; bytes: string; time: string; ok: boolean | null }

type Ops = Record<StoreOp, number>
const clock = manualClock()
const STEP_MS = 400

/** `steps` steps, each taking 400 ms of the bench's clock. */
const benchKind = defineJob({
  kind: 'bench_steps',
  input: z.strictObject({ steps: z.number().int(), resource: z.string() }),
  lockKey: (input, account) => [account, 'bench', input.resource],
  async run({ input, step }) {
    for (let i = 0; i < input.steps; i++) await step(`s${i}`, () => (clock.advance(STEP_MS), i))
    return { steps: input.steps }
  },
})

async function measure(steps: number, invocationLimitMs: number): Promise<{ ops: Ops; stepReads: number; invocations: number }> {
  const ops = { read: 0, create: 0, replace: 0, put: 0, delete: 0, list: 0 } as Ops
  let stepReads = 0
  let counting = false
  const store = hookedStore(memoryPort(), (op, key) => {
    if (!counting) return
    ops[op]++
    if (op === 'read' && key.startsWith('steps/')) stepReads++
  })
  const called: string[] = []
  const deps = testDeps(store, { clock, kinds: [benchKind], settings: { invocationLimitMs }, invokeWorker: async (jobId) => void called.push(jobId) })
  await createAccount(store, clock, 'bench', 100)
  const { body } = await submitJob(deps, 'bench', { kind: 'bench_steps', input: { steps, resource: `r${steps}-${invocationLimitMs}` } }, null)
  called.length = 0
  counting = true
  let invocations = 0
  for (let next: string | undefined = body.jobId; next; next = called.shift()) {
    invocations++
    await runJob(deps, next)
  }
  return { ops, stepReads, invocations }
}

const total = (ops: Ops) => Object.values(ops).reduce((a, b) => a + b, 0)
const minus = (a: Ops, b: Ops) => Object.fromEntries(Object.entries(a).map(([op, n]) => [op, n - b[op as StoreOp]])) as Ops

export async function stepsRows(): Promise<StepsRow[]> {
  const ONE_INVOCATION = 3600_000
  const ten = await measure(10, ONE_INVOCATION)
  const thirty = await measure(30, ONE_INVOCATION)
  const perStep = total(minus(thirty.ops, ten.ops)) / 20
  // 30 steps of 400 ms under a 2 s limit: handed over every 6 steps.
  const continued = await measure(30, 2_000)
  const continuations = continued.invocations - 1
  const replays = continued.stepReads - thirty.stepReads
  const extra = total(minus(continued.ops, thirty.ops))
  const perContinuation = (extra - replays) / continuations
  return [
    {
      scenario: 'One durable step (`ctx.step`) not stored yet: extra ops per step, from a job of 30 steps against one of 10, in one invocation',
      budget: '≤ 3.5 ops (its read, its create-only store, the state write of `step_completed`; a chunk of events every 10)',
      measured: `${perStep.toFixed(2)} ops per step (${total(ten.ops)} ops for 10 steps, ${total(thirty.ops)} for 30)`,
      bytes: '', time: '', ok: perStep <= 3.5,
    },
    {
      scenario: 'One continuation into a fresh invocation (30 steps of 400 ms under a 2 s limit), beyond the steps themselves and the re-reads of stored steps',
      budget: '≤ 11 ops (due entry, lock renewal, hand-over state write; the next invocation reads its spec, renews the lock, fails the create-only claim, reads the state, claims; a chunk of events now and then)',
      measured: `${perContinuation.toFixed(1)} ops per continuation over ${continuations} continuations; plus ${replays} reads of steps already stored (each invocation re-reads those before it: one read per earlier step)`,
      bytes: '', time: '', ok: perContinuation <= 11,
    },
  ]
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await stepsRows()) console.log(`| ${r.scenario} | ${r.budget} | ${r.measured} | ${r.time} | ${r.ok === null ? 'n/a' : r.ok ? 'yes' : 'no'} |`)
}
