/**
 * A second `npm run dev` on a port already taken stops before it prints its
 * banner or writes anything, with one line that says what to do.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { type Server, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'

const DEV_SCRIPT = fileURLToPath(new URL('../scripts/dev.ts', import.meta.url))
let holder: Server
let port: number
let dir: string

beforeAll(async () => {
  holder = createServer()
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve))
  port = (holder.address() as { port: number }).port
  dir = await mkdtemp(join(tmpdir(), 'dev-port-'))
})
afterAll(async () => {
  await new Promise((resolve) => holder.close(resolve))
  await rm(dir, { recursive: true, force: true })
})

it('a taken port: exit 1 with one line on stderr, no banner, nothing written', async () => {
  const child = spawn(process.execPath, [DEV_SCRIPT, '--port', String(port)], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => (stdout += chunk))
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  expect(code).toBe(1)
  expect(stdout).toBe('')
  expect(stderr.trim().split('\n')).toEqual([`Port ${port} is already in use (is another \`npm run dev\` running?). Stop it, or use another port: npm run dev -- --port ${port + 1}`])
  expect(existsSync(join(dir, '.env'))).toBe(false)
  expect(existsSync(join(dir, '.netlify'))).toBe(false)
})
