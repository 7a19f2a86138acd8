/** Job kinds that exist only in tests: slow, failing, hanging. Registered without touching production code. */
import { z } from 'zod'
import { JobFailure } from '../../lib/core/errors.ts'
import { defineJob } from '../../lib/kinds/define.ts'

/** Steps with a pause each; honours cancel; optional resource lock. */
export const slow = defineJob({
  kind: 'slow',
  input: z.strictObject({ steps: z.number().int().min(1).max(5000), delayMs: z.number().int().min(0).max(5000), resource: z.string().optional() }),
  lockKey: (input, account) => (input.resource ? [account, 'slow', input.resource] : [account, 'slow', `free-${Math.random().toString(36).slice(2)}`]),
  async run({ input, progress, emit, signal }) {
    for (let step = 1; step <= input.steps; step++) {
      if (input.delayMs) await new Promise((resolve) => setTimeout(resolve, input.delayMs))
      signal.throwIfAborted()
      await emit('step', { step })
      if (step % 10 === 0 || step === input.steps) await progress(`step ${step}`, (step / input.steps) * 100)
    }
    return { steps: input.steps }
  },
})

/** Fails with an error full of things no client may see. */
export const failing = defineJob({
  kind: 'failing',
  input: z.strictObject({ public: z.boolean().optional() }),
  async run({ input }) {
    if (input.public) {
      throw new JobFailure('bad_document', 'The document could not be read at /var/data/secret.txt from db.internal:5432')
    }
    throw new Error('connect ECONNREFUSED 10.0.3.7:5432 at postgres.internal.example.com with token sk_live_abcdefghijklmnopqrstuvwxyz123456')
  },
})

/** Waits until released from outside: a worker that stops mid-job. */
export const hanging = (gate: Promise<void>) =>
  defineJob({
    kind: 'hanging',
    input: z.strictObject({ resource: z.string() }),
    lockKey: (input, account) => [account, 'hanging', input.resource],
    async run({ emit }) {
      await emit('working', null)
      await gate
      await emit('after_gate', null)
      return { finished: true }
    },
  })

/**
 * Emits `count` ticks at random intervals with exponential gaps of mean
 * `meanMs` (a memoryless source: nothing about one gap tells the next).
 * The stream bench runs it under `netlify dev`.
 */
export const ticker = defineJob({
  kind: 'ticker',
  input: z.strictObject({ count: z.number().int().min(1).max(1000), meanMs: z.number().int().min(1).max(60_000) }),
  async run({ input, emit, signal }) {
    for (let i = 1; i <= input.count; i++) {
      await new Promise((resolve) => setTimeout(resolve, -Math.log(1 - Math.random()) * input.meanMs))
      signal.throwIfAborted()
      await emit('tick', { i })
    }
    return { ticks: input.count }
  },
})

/** Tries to emit each of `types` and returns the ones the worker refused. */
export const emitter = defineJob({
  kind: 'emitter',
  input: z.strictObject({ types: z.array(z.string()).max(20) }),
  async run({ input, emit }) {
    const refused: string[] = []
    for (const type of input.types) {
      try {
        await emit(type, {})
      } catch {
        refused.push(type)
      }
    }
    return { refused }
  },
})
