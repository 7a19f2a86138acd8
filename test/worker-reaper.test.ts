/**
 * The job lifecycle at the domain level, on the real local Blobs server:
 * claim, run, finish, cancel, crash and reap, retention.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import type { Deps } from '../lib/core/deps.ts'
import { jobLog, readEvents } from '../lib/events/log.ts'
import { readSpec, readState } from '../lib/jobs/state.ts'
import { cancelJob, getJob } from '../lib/jobs/read.ts'
import { defineJob } from '../lib/kinds/define.ts'
import { peekLock } from '../lib/locks/lock.ts'
import { reap } from '../lib/reaper/reap.ts'
import { createAccount } from '../lib/credits/index.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { adminRetry } from '../lib/admin/actions.ts'
import { runJob } from '../lib/jobs/worker.ts'
import { useBlobs } from './support/blobs.ts'
import { interceptedStore } from './support/hooked-store.ts'
import { type ManualClock, manualClock, testDeps } from './support/deps.ts'
import { failing, hanging } from './support/kinds.ts'

const blobs = useBlobs()

let storeNo = 0
async function setup(kinds: NonNullable<Parameters<typeof testDeps>[1]>['kinds'] = [], clock: ManualClock = manualClock()) {
  const deps = testDeps(blobs.port(`lifecycle-${++storeNo}`), {
    clock,
    kinds,
    settings: { heartbeatIntervalMs: 3600_000 },
  })
  await createAccount(deps.store, clock, 'acct', 1000)
  await createAccount(deps.store, clock, 'other', 1000)
  return { deps, clock }
}

async function allEvents(deps: Deps, jobId: string) {
  const stored = await readState(deps.store, jobId)
  return (await readEvents(deps.store, jobLog(jobId), stored!.state.log, 0, 1000)).events
}

const text = Array.from({ length: 60 }, (_, i) => `Sentence number ${i} talks about durable jobs and storage. `).join('')

describe('worker', () => {
  it('runs a summarize job to complete: events in order, result unwrapped in done, lock freed, live entry gone', async () => {
    const { deps } = await setup()
    const { body } = await submitJob(deps, 'acct', { kind: 'summarize', input: { text, windowChars: 1000 } }, null)
    expect(await runJob(deps, body.jobId)).toBe('complete')
    const events = await allEvents(deps, body.jobId)
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1))
    expect(events[0]?.type).toBe('started')
    expect(events.filter((e) => e.type === 'window_complete').length).toBeGreaterThan(1)
    const done = events.at(-1)!
    expect(done.type).toBe('done')
    const result = (done.data as { result: { title: string; summary: string } }).result
    expect(typeof result.title).toBe('string')
    expect(result.summary.length).toBeGreaterThan(0)
    const job = await getJob(deps, 'acct', body.jobId)
    expect(job).toMatchObject({ status: 'complete', progress: { percent: 100 }, lastSeq: done.seq })
    expect(job.result).toEqual(result)
    const { state } = (await readState(deps.store, body.jobId))!
    expect((await peekLock(deps.store, state.lockKey!))?.record.state).toBe('released')
    expect(await readSpec(deps.store, body.jobId)).toBeNull()
  })

  it('a duplicate or retried invocation does not run the job twice', async () => {
    let runs = 0
    const counted = defineJob({
      kind: 'counted',
      input: z.object({}),
      async run() {
        runs++
        await new Promise((resolve) => setTimeout(resolve, 20))
        return { runs }
      },
    })
    const { deps } = await setup([counted])
    const { body } = await submitJob(deps, 'acct', { kind: 'counted', input: {} }, null)
    const outcomes = await Promise.all([runJob(deps, body.jobId), runJob(deps, body.jobId), runJob(deps, body.jobId)])
    expect(outcomes.filter((o) => o === 'complete')).toHaveLength(1)
    expect(outcomes.filter((o) => o === 'already_claimed')).toHaveLength(2)
    expect(await runJob(deps, body.jobId)).toBe('already_claimed') // Netlify's retry minutes later
    expect(runs).toBe(1)
  })

  it('a failing handler fails the job with a public error and keeps the detail for operators', async () => {
    const { deps } = await setup([failing])
    const { body } = await submitJob(deps, 'acct', { kind: 'failing', input: {} }, null)
    expect(await runJob(deps, body.jobId)).toBe('failed')
    const { state } = (await readState(deps.store, body.jobId))!
    expect(state.error?.code).toBe('internal_error')
    expect(state.errorInternal).toContain('10.0.3.7')
    const events = await allEvents(deps, body.jobId)
    expect(events.at(-1)).toMatchObject({ type: 'error', data: { error: state.error } })
    expect(JSON.stringify(events)).not.toContain('10.0.3.7')
    expect(JSON.stringify(await getJob(deps, 'acct', body.jobId))).not.toContain('internal.example.com')
  })

  it('an unknown job id is not found; a job of an unregistered kind fails cleanly', async () => {
    const { deps } = await setup([failing])
    expect(await runJob(deps, 'job_nonexistent')).toBe('not_found')
    const { body } = await submitJob(deps, 'acct', { kind: 'failing', input: {} }, null)
    const { deps: other } = await setup()
    const withoutKind = { ...other, store: deps.store }
    expect(await runJob(withoutKind, body.jobId)).toBe('failed')
  })
  it('rounds progress percent to one decimal, the same in the event and the status', async () => {
    let seen: unknown
    const thirds = defineJob({
      kind: 'thirds',
      input: z.object({}),
      async run({ jobId, progress }) {
        await progress('one third', 100 / 3)
        seen = await getJob(deps, 'acct', jobId)
        return null
      },
    })
    const { deps } = await setup([thirds])
    const { body } = await submitJob(deps, 'acct', { kind: 'thirds', input: {} }, null)
    expect(await runJob(deps, body.jobId)).toBe('complete')
    const progress = (await allEvents(deps, body.jobId)).find((e) => e.type === 'progress')
    expect(progress?.data).toEqual({ message: 'one third', percent: 33.3 })
    expect(seen).toMatchObject({ progress: { message: 'one third', percent: 33.3 } })
  })
})

describe('cancel', () => {
  it('a queued job is canceled at once, and a late worker does not run it', async () => {
    const { deps } = await setup()
    const { body } = await submitJob(deps, 'acct', { kind: 'summarize', input: { text } }, null)
    const canceled = await cancelJob(deps, 'acct', body.jobId)
    expect(canceled.status).toBe(200)
    expect(canceled.job.status).toBe('canceled')
    expect(await runJob(deps, body.jobId)).toBe('already_claimed')
    expect((await allEvents(deps, body.jobId)).map((e) => e.type)).toEqual(['canceled'])
    await expect(cancelJob(deps, 'acct', body.jobId)).rejects.toMatchObject({ status: 409, code: 'job_finished' })
  })

  it('a running job is asked to stop, the handler sees the AbortSignal, and it ends canceled', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const { deps } = await setup([hanging(gate)])
    const { body } = await submitJob(deps, 'acct', { kind: 'hanging', input: { resource: 'r1' } }, null)
    const run = runJob(deps, body.jobId)
    await waitFor(async () => (await readState(deps.store, body.jobId))?.state.log.lastSeq === 2)
    const asked = await cancelJob(deps, 'acct', body.jobId)
    expect(asked.status).toBe(202)
    expect(asked.job.cancelRequested).toBe(true)
    release()
    expect(await run).toBe('canceled')
    const types = (await allEvents(deps, body.jobId)).map((e) => e.type)
    expect(types.at(-1)).toBe('canceled')
    expect(types.filter((t) => ['done', 'error', 'canceled'].includes(t))).toHaveLength(1)
  })

  it('a busy job that rewrites its state back to back is still canceled promptly (no job_busy)', async () => {
    const busy = defineJob({
      kind: 'busy',
      input: z.object({}),
      async run({ emit, signal }) {
        for (let i = 0; i < 100_000; i++) {
          signal.throwIfAborted()
          await emit('tick', { i })
        }
        return null
      },
    })
    const { deps } = await setup([busy])
    const { body } = await submitJob(deps, 'acct', { kind: 'busy', input: {} }, null)
    const run = runJob(deps, body.jobId)
    await waitFor(async () => ((await readState(deps.store, body.jobId))?.state.log.lastSeq ?? 0) > 20)
    const asked = await cancelJob(deps, 'acct', body.jobId)
    expect(asked.status).toBe(202)
    expect(asked.job.cancelRequested).toBe(true)
    expect(await run).toBe('canceled')
    const { state } = (await readState(deps.store, body.jobId))!
    expect(state.status).toBe('canceled')
    expect(state.log.lastSeq).toBeLessThan(100_000)
  })

  it('a running job whose worker sees the request before cancel writes it still answers 202, and the log has cancel_requested', async () => {
    const busy = defineJob({
      kind: 'busy',
      input: z.object({}),
      async run({ emit, signal }) {
        for (let i = 0; i < 100_000; i++) {
          signal.throwIfAborted()
          await emit('tick', { i })
        }
        return null
      },
    })
    const { deps } = await setup([busy])
    const { body } = await submitJob(deps, 'acct', { kind: 'busy', input: {} }, null)
    const run = runJob(deps, body.jobId)
    await waitFor(async () => ((await readState(deps.store, body.jobId))?.state.log.lastSeq ?? 0) > 20)
    // Cancel's marker lands, then the worker stops the job before cancel's own state write.
    const store = interceptedStore(deps.store, async (op, key, call) => {
      const result = await call()
      if (op === 'put' && key === `cancel/${body.jobId}`) await run
      return result
    })
    const asked = await cancelJob({ ...deps, store }, 'acct', body.jobId)
    expect(await run).toBe('canceled')
    expect(asked.status).toBe(202)
    expect(asked.job).toMatchObject({ status: 'canceled', cancelRequested: true })
    const types = (await allEvents(deps, body.jobId)).map((e) => e.type).filter((t) => t !== 'tick')
    expect(types.slice(-2)).toEqual(['cancel_requested', 'canceled'])
    expect(types.filter((t) => t === 'cancel_requested')).toHaveLength(1)
  })

  it("another account's job cannot be canceled or read: 404 as if it did not exist", async () => {
    const { deps } = await setup()
    const { body } = await submitJob(deps, 'acct', { kind: 'summarize', input: { text } }, null)
    await expect(cancelJob(deps, 'other', body.jobId)).rejects.toMatchObject({ status: 404 })
    await expect(getJob(deps, 'other', body.jobId)).rejects.toMatchObject({ status: 404 })
    expect((await getJob(deps, 'acct', body.jobId)).status).toBe('queued')
  })
})

describe('reaper', () => {
  it('fails a crashed worker’s job within the heartbeat timeout, frees its lock, and fences the worker', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const { deps, clock } = await setup([hanging(gate)])
    const { body } = await submitJob(deps, 'acct', { kind: 'hanging', input: { resource: 'doc' } }, null)
    const run = runJob(deps, body.jobId)
    await waitFor(async () => (await readState(deps.store, body.jobId))?.state.log.lastSeq === 2)

    expect((await reap(deps)).failed).toBe(0) // still alive
    clock.advance(deps.settings.heartbeatTimeoutMs + 1)
    const report = await reap(deps)
    expect(report.failed).toBe(1)

    const { state } = (await readState(deps.store, body.jobId))!
    expect(state.status).toBe('failed')
    expect(state.error?.code).toBe('worker_lost')
    expect((await peekLock(deps.store, state.lockKey!))?.record.state).toBe('released')
    const before = await allEvents(deps, body.jobId)
    expect(before.at(-1)?.type).toBe('error')

    // the zombie wakes up: nothing it does reaches the job
    release()
    expect(await run).toBe('fenced')
    expect(await allEvents(deps, body.jobId)).toEqual(before)
    expect((await readState(deps.store, body.jobId))!.state.status).toBe('failed')

    // and the resource is free for a new job
    const again = await submitJob(deps, 'acct', { kind: 'hanging', input: { resource: 'doc' } }, null)
    expect(again.status).toBe(202)
  })

  it('fails a job whose worker never started, after the queued timeout that covers Netlify retries', async () => {
    const { deps, clock } = await setup()
    const { body } = await submitJob(deps, 'acct', { kind: 'summarize', input: { text } }, null)
    clock.advance(4 * 60_000) // Netlify retries at +1 and +3 minutes may still come
    expect((await reap(deps)).failed).toBe(0)
    clock.advance(deps.settings.queuedTimeoutMs)
    expect((await reap(deps)).failed).toBe(1)
    expect(await getJob(deps, 'acct', body.jobId)).toMatchObject({ status: 'failed', error: { code: 'worker_never_started' } })
    expect(await runJob(deps, body.jobId)).toBe('already_claimed')
  })

  it('deletes finished jobs, their events and their released lock after retention, and nothing earlier', async () => {
    const { deps, clock } = await setup()
    const { body } = await submitJob(deps, 'acct', { kind: 'summarize', input: { text, windowChars: 500 } }, null)
    await runJob(deps, body.jobId)
    const { state } = (await readState(deps.store, body.jobId))!
    clock.advance(deps.settings.retentionMs - 60_000)
    expect((await reap(deps)).expiredDeleted).toBe(0)
    expect((await getJob(deps, 'acct', body.jobId)).status).toBe('complete')
    clock.advance(15 * 60_000)
    const report = await reap(deps)
    expect(report.expiredDeleted).toBe(1)
    expect(report.locksRemoved).toBe(1)
    await expect(getJob(deps, 'acct', body.jobId)).rejects.toMatchObject({ status: 404 })
    expect((await deps.store.list(`events/${body.jobId}/`)).keys).toEqual([])
    expect(await peekLock(deps.store, state.lockKey!)).toBeNull()
    expect((await deps.store.list('expiry/')).keys).toEqual([])
  })

  it('keeps a failed job\'s spec (for a rerun) until retention, and deletes it with the job', async () => {
    const { deps, clock } = await setup([failing])
    const { body } = await submitJob(deps, 'acct', { kind: 'failing', input: {} }, null)
    expect(await runJob(deps, body.jobId)).toBe('failed')
    expect(await readSpec(deps.store, body.jobId)).toBeNull()
    const kept = await deps.store.read(`failed/${body.jobId}`)
    expect(JSON.parse(kept!.data)).toMatchObject({ jobId: body.jobId, kind: 'failing', input: {} })
    clock.advance(deps.settings.retentionMs + 15 * 60_000)
    expect((await reap(deps)).expiredDeleted).toBe(1)
    expect(await deps.store.read(`failed/${body.jobId}`)).toBeNull()
  })

  it('runs a failed job again (the console\'s retry) with what it was submitted with: input, onBusy, webhook', async () => {
    const { deps } = await setup([failing])
    deps.settings.webhookAllowPrivateTargets = true
    const body = { kind: 'failing', input: { public: true }, sourceTaskId: 'task-1', onBusy: 'queue', webhookUrl: 'http://localhost:9/hook' }
    const { body: first } = await submitJob(deps, 'acct', body, null)
    expect(await runJob(deps, first.jobId)).toBe('failed')
    const again = await adminRetry(deps, first.jobId)
    expect(again).toMatchObject({ status: 202, retryOf: first.jobId })
    expect(again.body.jobId).not.toBe(first.jobId)
    expect(await readSpec(deps.store, again.body.jobId)).toMatchObject({ kind: 'failing', input: { public: true }, sourceTaskId: 'task-1', onBusy: 'queue', webhookUrl: 'http://localhost:9/hook' })
  })

  it('a worker called for a job that still waits (delayed) does not run it early', async () => {
    const { deps } = await setup([failing])
    const { body } = await submitJob(deps, 'acct', { kind: 'failing', input: {}, delaySeconds: 600 }, null)
    expect(await runJob(deps, body.jobId)).toBe('not_found')
    expect(await readState(deps.store, body.jobId)).toBeNull()
  })

  it('settles a job whose worker died after finishing but before cleaning up', async () => {
    const { deps } = await setup()
    const { body } = await submitJob(deps, 'acct', { kind: 'summarize', input: { text } }, null)
    await runJob(deps, body.jobId)
    const { state } = (await readState(deps.store, body.jobId))!
    // simulate the crash: put back the live entry and the held lock
    await deps.store.put(`queue/${body.jobId}`, JSON.stringify({ ...state, input: {}, idempotencyRecord: null }))
    await deps.store.put(`lock/${state.lockKey}`, JSON.stringify({ state: 'held', jobId: body.jobId, acquiredAt: 0, expiresAt: 9e15 }))
    const report = await reap(deps)
    expect(report.settled).toBe(1)
    expect((await peekLock(deps.store, state.lockKey!))?.record.state).toBe('released')
    expect(await readSpec(deps.store, body.jobId)).toBeNull()
  })
})

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000) {
  const start = Date.now()
  while (!(await check())) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
