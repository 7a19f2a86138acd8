/**
 * A lock whose job was not written yet belongs to a submit that may still be
 * running: a synchronous function lives up to 60 s on Netlify, so a lock
 * younger than that is never taken over as abandoned, however slow the
 * holder's storage calls are.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { ApiError } from '../lib/core/errors.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { defineJob } from '../lib/kinds/define.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import { manualClock, testDeps } from './support/deps.ts'
import { hookedStore } from './support/hooked-store.ts'
import { SUBMIT_WRITES_LAND_MS } from '../lib/core/limits.ts'

const locked = defineJob({
  kind: 'locked',
  input: z.object({ doc: z.string() }),
  lockKey: (input, account) => [account, 'doc', input.doc],
  run: async () => ({}),
})

describe('a slow submit keeps the lock it took', () => {
  it('a second submit 61 s into the first one (its job write still in flight) gets 409, not a takeover', async () => {
    const clock = manualClock()
    let holdSpec: (() => void) | null = null
    let arrived!: () => void
    const reached = new Promise<void>((resolve) => (arrived = resolve))
    const store = hookedStore(memoryPort(), async (op, key) => {
      if (op === 'create' && key.startsWith('queue/') && holdSpec === null) {
        const gate = new Promise<void>((resolve) => (holdSpec = resolve))
        arrived()
        await gate
      }
    })
    const deps = testDeps(store, { clock, kinds: [locked] })
    const first = submitJob(deps, 'acct', { kind: 'locked', input: { doc: 'a' } }, null)
    await reached
    clock.advance(61_000) // past the old 60 s grace, inside a submit's possible life plus margin
    const second = await submitJob(deps, 'acct', { kind: 'locked', input: { doc: 'a' } }, null).then(
      () => null,
      (error: unknown) => error,
    )
    expect(second).toBeInstanceOf(ApiError)
    expect(second).toMatchObject({ status: 409, code: 'resource_locked' })
    holdSpec!()
    expect((await first).status).toBe(202)
  })

  it('a lock whose submit died before writing its job is taken over once no submit can still be running', async () => {
    const clock = manualClock()
    let arrived!: () => void
    const reached = new Promise<void>((resolve) => (arrived = resolve))
    let crashed = false
    const store = hookedStore(memoryPort(), async (op, key) => {
      if (op === 'create' && key.startsWith('queue/') && !crashed) {
        crashed = true
        arrived()
        await new Promise(() => {}) // the function was killed here: nothing after this call ever runs
      }
    })
    const deps = testDeps(store, { clock, kinds: [locked] })
    void submitJob(deps, 'acct', { kind: 'locked', input: { doc: 'b' } }, null)
    await reached
    clock.advance(61_000)
    await expect(submitJob(deps, 'acct', { kind: 'locked', input: { doc: 'b' } }, null)).rejects.toMatchObject({ status: 409 })
    clock.advance(30_000) // 91 s: a write sent just before the submit stopped may still land
    await expect(submitJob(deps, 'acct', { kind: 'locked', input: { doc: 'b' } }, null)).rejects.toMatchObject({ status: 409 })
    clock.advance(SUBMIT_WRITES_LAND_MS - 91_000)
    expect((await submitJob(deps, 'acct', { kind: 'locked', input: { doc: 'b' } }, null)).status).toBe(202)
  })
})
