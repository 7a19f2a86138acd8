/**
 * Soak (`npm run test:soak`, run by CI after `npm test`): `npm run dev`
 * itself, a `netlify dev` of its own started by scripts/dev.ts, calls the
 * reaper on its schedule, which `netlify dev` alone never does. A whole server
 * startup for one check, so it runs here; test/dev-reaper.test.ts drives the
 * same schedule (scripts/dev-reaper.ts) against the real reaper in `npm test`,
 * and test/dev-port.test.ts runs `npm run dev` on a taken port.
 */
import { spawn } from 'node:child_process'
import { cp } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { REPO, STARTUP_TIMEOUT_MS, cliEnv, freePort, makeProjectRoot, removeRoot } from '../e2e/support.ts'

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
