/**
 * Storage faults against the real local Blobs server, through a proxy that
 * fails, loses, delays and drops requests. Whatever the faults, once they stop
 * and the reaper has run: every job that exists is finished with exactly one
 * terminal event, no lock is held without a live job, no job is running
 * without its lock, and credits add up.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { jobLog, readEvents } from '../lib/events/log.ts'
import { readState } from '../lib/jobs/state.ts'
import { LockRecordSchema, TERMINAL_EVENT_TYPES, isTerminal } from '../lib/core/types.ts'
import type { BlobPort } from '../lib/storage/port.ts'
import { testApi } from './support/api.ts'
import { expectCreditInvariants } from './support/credit-invariants.ts'
import { type FaultAction, type FaultProxy, startFaultProxy } from './support/fault-proxy.ts'
import { failing, slow } from './support/kinds.ts'

let proxy: FaultProxy
let store: BlobPort
let apiKey: string
const api = testApi({
  kinds: [slow, failing],
  accounts: { acct: 10_000 },
  env: { HEARTBEAT_TIMEOUT_SECONDS: '2', HEARTBEAT_INTERVAL_SECONDS: '1', QUEUED_TIMEOUT_SECONDS: '2' },
  via: async (blobsUrl) => (proxy = await startFaultProxy(blobsUrl)),
})

beforeAll(async () => {
  await api.start()
  store = api.store // direct, fault-free: for the checks
  apiKey = api.key('acct')
})
afterAll(() => api.stop())

/** A small seeded generator, so a failing round can be replayed. */
function random(seed: number) {
  let s = seed >>> 0
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32)
}

function faultRule(seed: number, rate: number): (request: { method: string }) => FaultAction {
  const next = random(seed)
  let burst = 0
  return () => {
    if (burst > 0) {
      burst--
      return { type: 'fail-before' }
    }
    const roll = next()
    if (roll > rate) return { type: 'pass' }
    const kind = next()
    if (kind < 0.3) {
      burst = 6 // longer than the SDK's five retries: the caller sees the failure
      return { type: 'fail-before' }
    }
    if (kind < 0.55) return { type: 'fail-after' }
    if (kind < 0.8) return { type: 'delay', ms: Math.floor(next() * 40) }
    return { type: 'drop' }
  }
}

async function submit(body: unknown) {
  try {
    const res = await fetch(`${api.url}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    return { status: res.status, body: (await res.json().catch(() => null)) as { jobId?: string } | null }
  } catch {
    return { status: 0, body: null }
  }
}

async function reaperRun() {
  const res = await fetch(`${api.url}/.netlify/functions/reaper`)
  expect(res.status).toBe(200)
}

describe('storage faults through a proxy', () => {
  const rounds = Number(process.env.FAULT_ROUNDS ?? 6)
  it(`${rounds} rounds of concurrent submits under faults leave a consistent system`, async () => {
    const statuses: Record<string, number> = {}
    for (let round = 0; round < rounds; round++) {
      proxy.rule = faultRule(1000 + round, 0.12)
      const submits = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          submit(
            i % 4 === 3
              ? { kind: 'failing', input: {} }
              : { kind: 'slow', input: { steps: 12, delayMs: 5, resource: `r${round}-${i % 3}` }, clientJobId: `c${round}-${i}` },
          ),
        ),
      )
      for (const s of submits) statuses[s.status] = (statuses[s.status] ?? 0) + 1
      await api.idle()
    }
    // Faults stop; time passes beyond the timeouts; the reaper runs.
    proxy.rule = () => ({ type: 'pass' })
    await new Promise((resolve) => setTimeout(resolve, 2500))
    await reaperRun()
    await reaperRun()

    const { keys: stateKeys } = await store.list('job/')
    const { keys: live } = await store.list('queue/')
    expect(live, 'no job is left live').toEqual([])
    const endings: Record<string, number> = {}
    for (const key of stateKeys) {
      const { state } = (await readState(store, key.slice(4)))!
      endings[`${state.kind}:${state.status}`] = (endings[`${state.kind}:${state.status}`] ?? 0) + 1
      expect(isTerminal(state.status), `${state.jobId} is ${state.status}`).toBe(true)
      const { events } = await readEvents(store, jobLog(state.jobId), state.log, 0, 1000)
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1))
      expect(events.filter((e) => TERMINAL_EVENT_TYPES.has(e.type)), state.jobId).toHaveLength(1)
      expect(TERMINAL_EVENT_TYPES.has(events.at(-1)!.type)).toBe(true)
    }
    const { keys: lockKeys } = await store.list('lock/')
    for (const key of lockKeys) {
      const record = LockRecordSchema.parse(JSON.parse((await store.read(key))!.data))
      if (record.state !== 'held') continue
      // A held lock must belong to a live job; none are live now, except locks
      // whose submit died before writing the job: those are taken over later.
      const holder = await readState(store, record.jobId)
      expect(holder === null || !isTerminal(holder.state.status), `${key} held by finished ${record.jobId}`).toBe(true)
      if (holder === null) expect((await store.read(`queue/${record.jobId}`)) === null).toBe(true)
    }
    await expectCreditInvariants(store, 'acct')
    console.log(`fault injection: ${rounds * 8} submits, answers ${JSON.stringify(statuses)}, jobs ${JSON.stringify(endings)}, proxy ${JSON.stringify(proxy.counts)}`)
    expect(statuses['202'] ?? 0).toBeGreaterThan(0)
    expect(proxy.counts['fail-before'] + proxy.counts['fail-after'] + proxy.counts.drop).toBeGreaterThan(0)
    for (const status of Object.keys(statuses)) expect(['202', '409', '503', '500'].includes(status), `status ${status}`).toBe(true)
  }, 120_000)
})
