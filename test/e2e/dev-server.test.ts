/**
 * The local dev server refuses what it cannot take instead of dying: through
 * the real `netlify dev` (the shared one, test/e2e/shared.ts; patched at
 * install, patches/netlify-cli+27.10.2.patch), a body over the CLI's 6 MB
 * limit gets a 413 in the API's error envelope, and the server keeps serving.
 * And `npm run dev` (its own server) calls the reaper on a schedule.
 */
import { spawn } from 'node:child_process'
import { cp } from 'node:fs/promises'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { type SharedDevInfo, sharedNetlifyDev, sharedNetlifyDevOutput } from './shared.ts'
import { REPO, STARTUP_TIMEOUT_MS, cliEnv, freePort, makeProjectRoot, newApiKey, registerKeys, removeRoot } from './support.ts'

const apiKey = newApiKey('e2e-dev-server')
let dev: SharedDevInfo

/** A submit whose JSON body is about `megabytes` MB. */
const submitOfSize = (megabytes: number) =>
  fetch(`${dev.url}/api/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'summarize', input: { text: 'Durable jobs. '.repeat(Math.round((megabytes * 1e6) / 14)) } }),
    signal: AbortSignal.timeout(60_000),
  })

describe('netlify dev and oversized bodies', () => {
  beforeAll(async () => {
    dev = await sharedNetlifyDev()
    await registerKeys(dev.root, [{ apiKey, account: 'e2e-dev-server' }])
  }, STARTUP_TIMEOUT_MS + 10_000)

  it('answers 413 in the error envelope for 8 MB and for 5 MB, and keeps serving', async () => {
    for (const megabytes of [8, 5]) {
      const res = await submitOfSize(megabytes)
      expect(res.status, `${megabytes} MB`).toBe(413)
      const body = (await res.json()) as { error: { code: string; message: string } }
      expect(body.error.code).toBe('payload_too_large')
      expect(body.error.message.length).toBeGreaterThan(0)
    }

    // Still serving: a normal submit is accepted and its job can be read.
    const accepted = await fetch(`${dev.url}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'summarize', input: { text: 'Durable jobs survive restarts. Locks stop double work.' } }),
    })
    expect(accepted.status, await accepted.clone().text()).toBe(202)
    const { jobId } = (await accepted.json()) as { jobId: string }
    const status = await fetch(`${dev.url}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${apiKey}` } })
    expect(status.status).toBe(200)
    expect(await sharedNetlifyDevOutput()).not.toMatch(/Stream body too big/)
  }, 120_000) // 13 MB through the shared server, which other suites keep busy
})

describe('npm run dev', () => {
  it('calls the reaper on its schedule, which netlify dev alone never does', async () => {
    const devRoot = await makeProjectRoot()
    await cp(join(REPO, 'scripts'), join(devRoot, 'scripts'), { recursive: true })
    const port = await freePort()
    // `npm run dev` is `node scripts/dev.ts`; a short period so the test need not wait 5 minutes.
    const child = spawn(join(REPO, 'node_modules', '.bin', 'node'), ['scripts/dev.ts', '--port', String(port)], {
      cwd: devRoot,
      env: cliEnv(devRoot, { DEV_REAPER_INTERVAL_SECONDS: '2' }),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk))
    const exited = new Promise((done) => child.once('exit', done))
    try {
      const deadline = Date.now() + STARTUP_TIMEOUT_MS
      // The reaper function logs a report each run; two runs show the schedule repeats.
      const runs = () => output.match(/"message":"reaper run"/g)?.length ?? 0
      while (runs() < 2 && Date.now() < deadline) await new Promise((done) => setTimeout(done, 250))
      expect(runs(), output.slice(-3000)).toBeGreaterThanOrEqual(2)
      expect(output).toMatch(/Reaper: +every 2 s/)
      // It generated what a bare `netlify dev` lacks: the secret (no `misconfigured`) and the key.
      expect(output).not.toMatch(/misconfigured/)
    } finally {
      try {
        process.kill(-child.pid!, 'SIGTERM')
      } catch {
        // already gone
      }
      await Promise.race([exited, new Promise((done) => setTimeout(done, 10_000))])
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // already gone
      }
      await removeRoot(devRoot)
    }
  }, STARTUP_TIMEOUT_MS + 30_000)
})
