/**
 * Waiting jobs (delayed, or queued behind a busy resource) keep their specs
 * at `waiting/<job>`, out of the live index `queue/` that the reaper walks
 * every run: with 10 000 delayed jobs the reaper's run costs what it costs
 * with none. Storage is the atomic in-memory store behind a counting port.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { defineJob } from '../lib/kinds/define.ts'
import { getJob } from '../lib/jobs/read.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { reap } from '../lib/reaper/reap.ts'
import { keys } from '../lib/storage/keys.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import { manualClock, testDeps } from './support/deps.ts'
import { type StoreOp, hookedStore } from './support/hooked-store.ts'

const later = defineJob({
  kind: 'later',
  input: z.strictObject({ doc: z.string() }),
  lockKey: (input, account) => [account, 'doc', input.doc],
  async run() {
    return null
  },
})

async function reaperOpsWith(delayed: number) {
  const ops: string[] = []
  let counting = false
  const memory = memoryPort()
  const store = hookedStore(memory, (op: StoreOp, key) => void (counting && ops.push(`${op} ${key}`)))
  const deps = testDeps(store, { clock: manualClock(), kinds: [later] })
  for (let i = 0; i < delayed; i++) {
    await submitJob(deps, 'acct', { kind: 'later', input: { doc: `d${i}` }, delaySeconds: 3600 + i }, null)
  }
  counting = true
  const report = await reap(deps)
  return { ops, report, memory, deps }
}

describe('waiting jobs are out of the live index', () => {
  it('a reaper run costs the same with 10 000 delayed jobs waiting as with none (it cost 20 003 ops when they sat in queue/)', async () => {
    const none = await reaperOpsWith(0)
    const many = await reaperOpsWith(10_000)
    expect(many.report.liveChecked).toBe(0)
    expect(many.ops).toEqual(none.ops)
    expect(many.ops.length).toBeLessThan(5)
    const stored = [...many.memory.snapshot().keys()]
    expect(stored.filter((key) => key.startsWith(keys.waitingPrefix))).toHaveLength(10_000)
    expect(stored.filter((key) => key.startsWith(keys.specPrefix))).toHaveLength(0)
    // Still readable as what they are.
    const one = stored.find((key) => key.startsWith(keys.waitingPrefix))!.slice(keys.waitingPrefix.length)
    expect((await getJob(many.deps, 'acct', one)).status).toBe('scheduled')
  }, 120_000)
})
