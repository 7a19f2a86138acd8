/**
 * Soak (`npm run test:soak`, run by CI after `npm test`): a crash of the real
 * `netlify dev` mid-job and the reaper of the restarted one. It needs a server
 * of its own that it kills (SIGKILL of the whole process group) and starts
 * again on the same root, the same local Blobs sandbox: two startups, so it
 * runs here rather than in `npm test`, where test/e2e/netlify-dev.test.ts runs
 * the rest of the product through the shared server (and the reaper through
 * `functions:invoke` once). test/worker-reaper.test.ts proves the same recovery
 * at the handler level in `npm test`.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { expectReportShape, invokeReaper } from '../e2e/reaper-invoke.ts'
import { type NetlifyDev, STARTUP_TIMEOUT_MS, makeProjectRoot, newApiKey, registerKeys, removeRoot, secret, startNetlifyDev } from '../e2e/support.ts'

const ACCOUNT = 'crash'
const key = newApiKey(ACCOUNT)
const env = { JOBS_SIGNING_SECRET: secret(), ADMIN_TOKEN: secret() }
let root: string
let dev: NetlifyDev
const servers: NetlifyDev[] = []

beforeAll(async () => {
  root = await makeProjectRoot()
  await registerKeys(root, [{ apiKey: key, account: ACCOUNT, credits: 1000 }])
  dev = await startNetlifyDev(root, env)
  servers.push(dev)
}, STARTUP_TIMEOUT_MS + 30_000)

afterAll(async () => {
  await Promise.all(servers.map((server) => server.stop()))
  if (root) await removeRoot(root)
}, 60_000)

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => console.error(`--- netlify dev output (tail) ---\n${servers.at(-1)?.output().slice(-6000)}`))
})

async function api(path: string, options: { auth?: string; body?: unknown } = {}) {
  const res = await fetch(`${dev.url}${path}`, {
    method: options.body === undefined ? 'GET' : 'POST',
    headers: { authorization: options.auth ?? `Bearer ${key}`, ...(options.body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(60_000),
  })
  const text = await res.text()
  return { status: res.status, text, body: text ? JSON.parse(text) : null }
}

/** About `chars` characters of distinct sentences, in paragraphs. */
const textOfSize = (chars: number) =>
  Array.from({ length: Math.ceil(chars / 60) }, (_, i) => `The worker records note ${i + 1} of the crash document.${i % 6 === 5 ? '\n\n' : ''}`).join(' ').slice(0, chars)

const submit = (text: string) => api('/api/jobs', { body: { kind: 'summarize', input: { text, windowChars: 500 } } })

describe('netlify dev, crash and restart', () => {
  it('recovers from a crash: the reaper of a restarted netlify dev fails the orphaned job and frees its lock', async () => {
    // A job that runs for a while; crash the whole server once it has made progress.
    const text = textOfSize(400_000)
    const submitted = await submit(text)
    expect(submitted.status, submitted.text).toBe(202)
    const jobId = submitted.body.jobId as string
    let seen = 0
    while (seen < 20) {
      const feed = await api(`/api/jobs/${jobId}/events?after=${seen}&wait=20`)
      expect(feed.status).toBe(200)
      expect(feed.body.done, 'the job finished before the crash').toBe(false)
      seen = feed.body.next
    }
    await dev.stop('SIGKILL')

    // Same root (same Blobs sandbox), new port; a heartbeat timeout the reaper can reach.
    dev = await startNetlifyDev(root, { ...env, HEARTBEAT_TIMEOUT_SECONDS: '2' })
    servers.push(dev)

    const orphan = await api(`/api/jobs/${jobId}`)
    expect(orphan.status).toBe(200)
    expect(orphan.body.status).toBe('running') // nobody is left to finish it
    const lastSeq = orphan.body.lastSeq as number
    expect(lastSeq).toBeGreaterThanOrEqual(20)
    const locked = await submit(text)
    expect(locked.status).toBe(409)
    expect(locked.body.holder.jobId).toBe(jobId)

    const adminView = await api('/api/admin/jobs', { auth: `Bearer ${env.ADMIN_TOKEN}` })
    const stale = adminView.body.jobs.find((job: any) => job.jobId === jobId)
    const quietSince = Date.parse(stale.heartbeatAt ?? stale.updatedAt)
    while (Date.now() <= quietSince + 2500) await new Promise((done) => setTimeout(done, 250))

    const { report } = await invokeReaper(root, dev.port, () => dev.output())
    expectReportShape(report)
    expect(report).toMatchObject({ failed: 1, unfinished: false })
    expect(report.liveChecked).toBeGreaterThanOrEqual(1)

    const failed = await api(`/api/jobs/${jobId}`)
    expect(failed.body).toMatchObject({ status: 'failed', error: { code: 'worker_lost' }, lastSeq: lastSeq + 1 })
    const tail = await api(`/api/jobs/${jobId}/events?after=${lastSeq}`)
    expect(tail.body).toMatchObject({ done: true, status: 'failed', next: lastSeq + 1 })
    expect(tail.body.events).toEqual([expect.objectContaining({ seq: lastSeq + 1, type: 'error', data: { error: expect.objectContaining({ code: 'worker_lost' }) } })])
    const internal = (await api('/api/admin/jobs', { auth: `Bearer ${env.ADMIN_TOKEN}` })).body.jobs.find((job: any) => job.jobId === jobId)
    expect(internal.error_internal).toMatch(/no heartbeat/)
    expect(failed.text).not.toMatch(/no heartbeat/)

    // The lock was freed with it: the same document can be submitted again (left running; afterAll stops the server).
    const again = await submit(text)
    expect(again.status, again.text).toBe(202)
    expect(again.body.jobId).not.toBe(jobId)
  }, 2 * STARTUP_TIMEOUT_MS + 120_000)
})
