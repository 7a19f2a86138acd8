/**
 * Job kinds of the simulation. Small, with a few steps each, all paying
 * credits; they sleep on the simulated clock of the worker that runs them.
 */
import { z } from 'zod'
import { JobFailure, RetryableError } from '../../lib/core/errors.ts'
import { type JobKind, defineJob, kindRegistry, type KindRegistry } from '../../lib/kinds/define.ts'

const Resource = z.string().regex(/^r[0-9]$/)
const TaskInput = z.strictObject({
  resource: Resource,
  steps: z.number().int().min(1).max(8),
  stepMs: z.number().int().min(0).max(60_000),
  /** Fail at this step: with a public JobFailure or an internal error. */
  fail: z.enum(['none', 'public', 'internal']),
  failAt: z.number().int().min(1),
})
/** What attempt n does (the last entry repeats): succeed, or fail one of four ways after its steps. */
const FlakyInput = z.strictObject({
  resource: Resource,
  steps: z.number().int().min(1).max(4),
  stepMs: z.number().int().min(0).max(60_000),
  attempts: z.array(z.enum(['ok', 'retryable', 'later', 'internal', 'final'])).min(1).max(4),
  /** The `retryAfterMs` of a 'later' RetryableError: past the in-invocation threshold, so the dispatcher runs it. */
  laterMs: z.number().int().min(0).max(3600_000),
})
/** Durable steps: each step's fn sleeps `stepMs`; the invocation limit is short in runs with steps (world.ts). */
/** `branches` 2: the steps run in two parallel branches (odd and even), as a handler with `Promise.all` does. */
const StepsInput = z.strictObject({ resource: Resource, steps: z.number().int().min(1).max(12), stepMs: z.number().int().min(0).max(60_000), branches: z.number().int().min(1).max(2).default(1) })
const HangInput = z.strictObject({ resource: Resource, tickMs: z.number().int().min(1000).max(30_000) })
const ChattyInput = z.strictObject({ resource: Resource, events: z.number().int().min(1).max(400) })

export type SimKindName = 'sim_task' | 'sim_free' | 'sim_hang' | 'sim_chatty' | 'sim_dear' | 'sim_flaky' | 'sim_steps'

/** Told when a step's fn starts; `done` when it returns. The id is what the fn returns (its result). */
export type StepRunRecorder = (jobId: string, name: string) => { id: string; done(): void }

async function steps(input: z.infer<typeof TaskInput>, ctx: { emit: (t: string, d?: unknown) => Promise<void>; progress: (m: string, p?: number) => Promise<void>; signal: AbortSignal }, sleep: (ms: number) => Promise<void>) {
  for (let i = 1; i <= input.steps; i++) {
    if (input.stepMs) await sleep(input.stepMs)
    ctx.signal.throwIfAborted()
    await ctx.emit('step', { i })
    await ctx.progress(`step ${i} of ${input.steps}`, (i / input.steps) * 100)
    if (input.fail !== 'none' && i === input.failAt) {
      if (input.fail === 'public') throw new JobFailure('sim_failed', `Step ${i} failed.`)
      throw new Error(`step ${i} blew up at db.internal:5432`)
    }
  }
  return { steps: input.steps }
}

/** The kinds, bound to the sleep of the worker (actor) that runs them. */
export function simKinds(sleep: (ms: number) => Promise<void>, recordStepRun: StepRunRecorder = (jobId, name) => ({ id: `${jobId}/${name}`, done() {} })): KindRegistry {
  const kinds: JobKind<any, any>[] = [
    /** A few steps on a resource (locked per account and resource); may fail. */
    defineJob({
      kind: 'sim_task',
      cost: 1,
      input: TaskInput,
      lockKey: (input, account) => [account, 'res', input.resource],
      run: (ctx) => steps(ctx.input, ctx, sleep),
    }),
    /** The same without a lock: only credits and client job ids tie these together. */
    defineJob({
      kind: 'sim_free',
      cost: 1,
      input: TaskInput,
      run: (ctx) => steps(ctx.input, ctx, sleep),
    }),
    /** Like sim_free at three times the price: a follow-up under its client job id pays the difference. */
    defineJob({
      kind: 'sim_dear',
      cost: 3,
      input: TaskInput,
      run: (ctx) => steps(ctx.input, ctx, sleep),
    }),
    /** Works (silently: only the worker's heartbeat shows it is alive) until canceled or killed. */
    defineJob({
      kind: 'sim_hang',
      cost: 2,
      input: HangInput,
      lockKey: (input, account) => [account, 'res', input.resource],
      async run({ input, signal, emit }) {
        for (let tick = 1; tick <= 5_000; tick++) {
          await sleep(input.tickMs)
          signal.throwIfAborted()
          if (tick % 8 === 0) await emit('tick', { tick })
        }
        return { ticks: 5_000 }
      },
    }),
    /** Retried: 3 attempts, waits of up to 2, 4 s (slept by the worker) or `laterMs` (the dispatcher's). */
    defineJob({
      kind: 'sim_flaky',
      cost: 1,
      input: FlakyInput,
      lockKey: (input, account) => [account, 'res', input.resource],
      retry: { maxAttempts: 3, backoff: { baseMs: 2_000, capMs: 30_000 } },
      async run(ctx) {
        const { input } = ctx
        const plan = input.attempts[Math.min(ctx.attempt, input.attempts.length) - 1]!
        await steps({ ...input, fail: 'none', failAt: 1 }, ctx, sleep)
        if (plan === 'retryable') throw new RetryableError('sim_busy', 'Busy, try again.')
        if (plan === 'later') throw new RetryableError('sim_rate_limited', 'Rate limited.', { retryAfterMs: input.laterMs })
        if (plan === 'internal') throw new Error(`attempt ${ctx.attempt} blew up at db.internal:5432`)
        if (plan === 'final') throw new JobFailure('sim_failed', 'Failed for good.')
        return { attempt: ctx.attempt }
      },
    }),
    /** Durable steps across invocations: each fn run is recorded, and returns its run's id, so the checks tell which run's result stood. */
    defineJob({
      kind: 'sim_steps',
      cost: 1,
      input: StepsInput,
      lockKey: (input, account) => [account, 'res', input.resource],
      // A step whose result could not be stored (storage faults) fails the attempt: the next one runs it again.
      retry: { maxAttempts: 3, backoff: { baseMs: 2_000, capMs: 30_000 } },
      async run({ jobId, input, signal, step }) {
        const runs: string[] = []
        const branch = async (first: number) => {
          for (let i = first; i <= input.steps; i += input.branches) {
            signal.throwIfAborted()
            runs[i - 1] = await step(`s${i}`, async () => {
              const run = recordStepRun(jobId, `s${i}`)
              if (input.stepMs) await sleep(input.stepMs)
              run.done()
              return run.id
            })
          }
        }
        await Promise.all(Array.from({ length: input.branches }, (_, b) => branch(b + 1)))
        return { runs }
      },
    }),
    /** Many events fast: chunks, pages and the log cap. */
    defineJob({
      kind: 'sim_chatty',
      cost: 1,
      input: ChattyInput,
      lockKey: (input, account) => [account, 'res', input.resource],
      async run({ input, signal, emit }) {
        for (let i = 1; i <= input.events; i++) {
          signal.throwIfAborted()
          await emit('line', { i })
        }
        return { lines: input.events }
      },
    }),
  ]
  return kindRegistry(kinds)
}
