/**
 * The client's `watchJob` transports and its job store, over HTTP against the
 * real function modules and the real local Blobs server. The `sse` transport
 * runs in a child Node with its own EventSource (`--experimental-eventsource`);
 * responses close after 1 s (STREAM_LIMIT_SECONDS), so a job of ~3 s forces
 * EventSource to reconnect with Last-Event-ID.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClient, createJobStore } from '../lib/client/index.ts'
import type { JobSnapshot } from '../lib/client/index.ts'
import { testApi } from './support/api.ts'
import { slow } from './support/kinds.ts'

const api = testApi({ kinds: [slow], accounts: { 'acct-a': 1000 }, env: { STREAM_LIMIT_SECONDS: '1' } })
beforeAll(() => api.start())
afterAll(() => api.stop())

const SCRIPT = fileURLToPath(new URL('./support/watch-client.ts', import.meta.url))
const run = promisify(execFile)

async function watchInChild(jobId: string, token: string, transport?: 'sse' | 'poll') {
  const args = ['--experimental-eventsource', '--no-warnings', SCRIPT, api.url, token, jobId, ...(transport ? [transport] : [])]
  const { stdout } = await run(process.execPath, args, { timeout: 60_000 }).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`the watching client failed:\n${error.stdout}\n${error.stderr}`)
  })
  return stdout.trim().split('\n').map((line) => JSON.parse(line))
}

async function submit(steps: number, delayMs: number) {
  const res = await api.call('/api/jobs', { method: 'POST', json: { kind: 'slow', input: { steps, delayMs } } })
  expect(res.status).toBe(202)
  return (await res.json()) as { jobId: string; watchToken: string }
}

describe('watchJob over the SSE stream (a real EventSource)', () => {
  it('is the default with a token client: every seq once across forced reconnects, then it stops', async () => {
    const { jobId, watchToken } = await submit(25, 120)
    const before = api.responses.length
    const lines = await watchInChild(jobId, watchToken)
    const seqs = lines.filter((l) => l.item).map((l) => l.item.seq)
    expect(seqs).toEqual(seqs.map((_: number, i: number) => i + 1))
    expect(lines.filter((l) => l.item).at(-1).item.type).toBe('done')
    expect(lines.at(-1)).toEqual({ outcome: 'ended' })
    const streams = api.responses.slice(before).filter((r) => r.route === 'job-stream')
    expect(streams.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(3) // two reconnects at least
    for (const r of streams) expect(r.authorization).toBeNull() // the token went in the URL
    expect(api.responses.slice(before).filter((r) => r.route === 'job-events')).toHaveLength(0) // no fallback needed
    const { events } = await api.follow(jobId)
    expect(seqs).toHaveLength(events.length)
  })

  it('goes on by long-poll when the stream is refused, and rejects with the API error it gets', async () => {
    const a = await submit(1, 0)
    const b = await submit(1, 0)
    const lines = await watchInChild(b.jobId, a.watchToken) // job A's token cannot read job B
    expect(lines.filter((l) => l.item)).toEqual([])
    expect(lines.at(-1)).toEqual({ outcome: 'rejected', name: 'ApiError', status: 404, code: 'not_found' })
  })

  it('refuses transport "sse" without EventSource or without a token, before any request', async () => {
    const keyClient = createClient({ baseUrl: api.url, apiKey: api.key('acct-a') })
    await expect(keyClient.watchJob('job_x', { transport: 'sse' }).next()).rejects.toThrow(TypeError)
    const tokenClient = createClient({ baseUrl: api.url, token: 'djt_x' })
    await expect(tokenClient.watchJob('job_x', { transport: 'sse' }).next()).rejects.toThrow(/EventSource/)
  })
})

describe('createJobStore', () => {
  const settle = (store: ReturnType<typeof createJobStore>, done: (s: JobSnapshot) => boolean) =>
    new Promise<JobSnapshot>((resolve) => {
      const off = store.subscribe(() => {
        if (done(store.getSnapshot())) {
          off()
          resolve(store.getSnapshot())
        }
      })
    })

  it('gives subscribe/getSnapshot for useSyncExternalStore: stable snapshots, status, progress, result; resumes without repeats', async () => {
    const client = createClient({ baseUrl: api.url, apiKey: api.key('acct-a') })
    const { jobId } = await submit(30, 40)
    const store = createJobStore(client, jobId, { transport: 'poll' })
    expect(store.getSnapshot()).toBe(store.getSnapshot())
    expect(store.getSnapshot()).toMatchObject({ jobId, status: null, done: false, connection: 'closed' })
    // Leave after a few events (the watch stops), then come back: it resumes after the last one.
    const early = await settle(store, (s) => s.events.length >= 3)
    expect(early.status).toBe('running')
    const final = await settle(store, (s) => s.done)
    expect(final.status).toBe('complete')
    expect(final.result).toEqual({ steps: 30 })
    expect(final.progress).toEqual({ message: 'step 30', percent: 100 })
    expect(final.events.map((e) => e.seq)).toEqual(final.events.map((_, i) => i + 1))
    expect(final.error).toBeNull()
    expect(store.getSnapshot()).toBe(store.getSnapshot())
  })

  it('records why a watch failed', async () => {
    const client = createClient({ baseUrl: api.url, apiKey: api.key('acct-a') })
    const store = createJobStore(client, 'job_0000000000000000000000000000000000000000', { transport: 'poll' })
    const failed = await settle(store, (s) => s.failure !== null)
    expect(failed).toMatchObject({ done: false, status: null })
    expect((failed.failure as { status?: number }).status).toBe(404)
  })
})
