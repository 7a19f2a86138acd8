/**
 * What a completion webhook costs: storage operations per job on the
 * worker's first try (the due entry its settle files, the attempt and its
 * record), on the dispatcher's later look at that entry, and per retry after
 * a failed attempt; and the time from a job's finish to its receiver having
 * the request, with a real receiver on loopback (no network latency: add
 * your receiver's). Storage is the atomic in-memory store behind a counting
 * port. Runs on its own too: `node scripts/bench-webhooks.ts`.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { createAccount } from '../lib/credits/index.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { runJob } from '../lib/jobs/worker.ts'
import { runDispatcher } from '../lib/schedule/dispatcher.ts'
import { dueHandlers } from '../lib/schedule/handlers.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import { type StoreOp, hookedStore } from '../test/support/hooked-store.ts'
import { manualClock, testDeps } from '../test/support/deps.ts'
import { slow } from '../test/support/kinds.ts'

export interface WebhookRow { scenario: string; budget: string; measured: string; bytes: string; time: string; ok: boolean | null }

const JOBS = 50

export async function webhookRows(): Promise<WebhookRow[]> {
  const statuses: number[] = []
  let receivedAt = 0
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      receivedAt = performance.now()
      res.statusCode = statuses.shift() ?? 200
      res.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`
  const ops = { read: 0, create: 0, replace: 0, put: 0, delete: 0, list: 0 } as Record<StoreOp, number>
  const counting = { on: false }
  const store = hookedStore(memoryPort(), (op) => void (counting.on && ops[op]++))
  const clock = manualClock()
  const deps = testDeps(store, { clock, kinds: [slow], settings: { webhookAllowPrivateTargets: true } })
  await createAccount(store, clock, 'bench', 0)
  const measure = async (fn: () => Promise<unknown>) => {
    for (const op of Object.keys(ops) as StoreOp[]) ops[op] = 0
    counting.on = true
    await fn()
    counting.on = false
    return Object.values(ops).reduce((a, b) => a + b, 0)
  }
  const finishJob = async (withHook: boolean) => {
    const { jobId } = (await submitJob(deps, 'bench', { kind: 'slow', input: { steps: 1, delayMs: 0 }, ...(withHook ? { webhookUrl: url } : {}) }, null)).body
    return measure(() => runJob(deps, jobId))
  }
  try {
    let plain = 0
    let hooked = 0
    let latency = 0
    for (let i = 0; i < JOBS; i++) {
      plain += await finishJob(false)
      const t0 = performance.now()
      hooked += await finishJob(true)
      latency += receivedAt - t0
    }
    clock.advance(60_000)
    const dispatcherOps = await measure(() => runDispatcher(deps, dueHandlers))
    statuses.push(500)
    await finishJob(true)
    clock.advance(61_000)
    const retryOps = await measure(() => runDispatcher(deps, dueHandlers))
    const per = (n: number) => Number((n / JOBS).toFixed(2))
    return [
      {
        scenario: `Webhook on the worker's first try, receiver on loopback answering 200: storage ops added to a job (${JOBS} jobs with and without)`,
        budget: 'a few, whatever the account has',
        measured: `${per(hooked - plain)} ops per job (${per(hooked)} with, ${per(plain)} without)`,
        bytes: '',
        time: `finish to request received: ${(latency / JOBS).toFixed(1)} ms mean (run + settle + send)`,
        ok: hooked - plain <= 5 * JOBS,
      },
      {
        scenario: `Dispatcher run after those ${JOBS} deliveries (the worker removed their entries)`,
        budget: 'flat: nothing left to do',
        measured: `${dispatcherOps} ops for the run`,
        bytes: '',
        time: '',
        ok: null,
      },
      {
        scenario: 'Webhook retry by the dispatcher after a 500 (one job; the run includes listing the due buckets)',
        budget: 'a few',
        measured: `${retryOps} ops for the run`,
        bytes: '',
        time: '',
        ok: retryOps <= 12,
      },
    ]
  } finally {
    server.close()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of await webhookRows()) console.log(`| ${r.scenario} | ${r.budget} | ${r.measured} | ${r.time} | ${r.ok === null ? '' : r.ok ? 'yes' : 'no'} |`)
}
