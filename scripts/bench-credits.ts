/**
 * The account record under load, for `npm run bench`: its size and what a
 * submit costs after 0, 10 000 and 100 000 charges with a client job id each
 * (so as many reservations) must stay flat. On the in-memory store, whose
 * operations map one to one onto the Blobs adapter's requests when nothing
 * fails (read → get, create/replace/put → set), so 100 000 charges take
 * seconds, not an hour.
 */
import { performance } from 'node:perf_hooks'
import { authenticate, createApiKey } from '../lib/api-keys.ts'
import { chargeJob, createAccount, planCharge } from '../lib/credits.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import type { BlobPort } from '../lib/storage/port.ts'
import { submitJob } from '../lib/submit.ts'
import { manualClock, testDeps } from '../test/support/deps.ts'

const OPS = { read: 'get', create: 'set', replace: 'set', put: 'set', delete: 'delete', list: 'list' } as const
type Tally = Record<'get' | 'set' | 'delete' | 'list', number>

function countingStore(inner: BlobPort) {
  const tally: Tally = { get: 0, set: 0, delete: 0, list: 0 }
  const store = Object.fromEntries(
    (Object.keys(OPS) as (keyof typeof OPS)[]).map((op) => [
      op,
      (...args: unknown[]) => {
        tally[OPS[op]]++
        return (inner[op] as (...a: unknown[]) => Promise<unknown>)(...args)
      },
    ]),
  ) as unknown as BlobPort
  return { store, tally }
}

export interface CreditRow {
  scenario: string
  budget: string
  measured: string
  bytes: string
  time: string
  ok: boolean
  why?: string
}

export async function measureAccountRecord(checkpoints = [0, 10_000, 100_000]): Promise<CreditRow[]> {
  const inner = memoryPort()
  const { store, tally } = countingStore(inner)
  const clock = manualClock()
  const deps = testDeps(store, { clock })
  await createAccount(inner, clock, 'bench', 1_000_000_000)
  const apiKey = await createApiKey(inner, clock, 'bench')
  const rows: CreditRow[] = []
  let charged = 0
  for (const target of checkpoints) {
    const t0 = performance.now()
    // Charges with a client job id each, a little under 10 000 an hour: every
    // reservation of the last hour is live when the submits below are measured.
    while (charged < target) {
      const plan = await planCharge(inner, clock, { account: 'bench', jobId: `job_fill${charged}`, kind: 'summarize', cost: 1, clientJobId: `fill-${charged}` })
      await chargeJob(inner, clock, plan)
      clock.advance(360)
      charged++
    }
    const fillMs = performance.now() - t0
    const measureSubmit = async (body: Record<string, unknown>) => {
      const before = { ...tally }
      const t = performance.now()
      await submitJob(deps, await authenticate(store, `Bearer ${apiKey}`), body, null)
      const ms = performance.now() - t
      const ops = (Object.keys(tally) as (keyof Tally)[]).map((k) => [k, tally[k] - before[k]] as const).filter(([, n]) => n > 0)
      return { total: ops.reduce((s, [, n]) => s + n, 0), breakdown: ops.map(([k, n]) => `${n} ${k}`).join(' + '), ms }
    }
    // `summarize` costs 1 and locks its text: a different text each, so no submit meets a lock.
    const input = (n: number) => ({ text: `Document ${target}-${n}. Durable jobs survive restarts. Locks stop double work.` })
    // Ten without a client job id: every tenth charge also writes a ledger chunk.
    const singles = []
    for (let n = 0; n < 10; n++) singles.push(await measureSubmit({ kind: 'summarize', input: input(100 + n) }))
    const alone = {
      total: singles.reduce((s, r) => s + r.total, 0) / singles.length,
      max: Math.max(...singles.map((r) => r.total)),
      breakdown: singles[0]!.breakdown,
      ms: singles.map((r) => r.ms).sort((a, b) => a - b)[5]!,
    }
    const first = await measureSubmit({ kind: 'summarize', input: input(2), clientJobId: `probe-${target}` })
    const follow = await measureSubmit({ kind: 'summarize', input: input(3), clientJobId: `probe-${target}` })
    const bytes = (await inner.read('account/bench'))!.data.length
    rows.push({
      scenario: `Account record and charged submits after ${target.toLocaleString('en')} charges, each with its own client job id (in-memory store)`,
      budget: 'record ≤ 16 KB; charged submit flat (5 ops, +1 every tenth for a ledger chunk)',
      measured: `record ${bytes} B; submit (auth + charge): ${alone.total} ops avg over 10, max ${alone.max} (typical: ${alone.breakdown}); first with a client job id: ${first.total} ops (${first.breakdown}); covered follow-up: ${follow.total} ops (${follow.breakdown})`,
      bytes: `${bytes} B record`,
      time: `${alone.ms.toFixed(2)} ms per submit (median); ${target ? `${((fillMs / target) * 1000).toFixed(0)} µs per fill charge` : '—'}`,
      ok: bytes <= 16 * 1024 && alone.max <= 6,
      
    })
  }
  return rows
}
