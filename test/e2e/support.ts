/**
 * Support for the end-to-end suite: a throwaway project root, API keys in its
 * local Blobs sandbox, and the real `netlify dev` started on a free port and
 * stopped with its whole process group.
 *
 * Why the project root is copied and not symlinked: with `netlify/` as a
 * symlink, netlify-cli 27 bundles each function under its real path
 * (`.netlify/functions-serve/jobs/<repo path>/netlify/...`) while the bootstrap
 * imports it under the link's path (`.../jobs/tmp/<root>/netlify/...`), so
 * every function answers 500 "Cannot find module". Copying the small source
 * folders and symlinking only `node_modules` works.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cp, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { getStore } from '@netlify/blobs'
import { BlobsServer } from '@netlify/blobs/server'
import { registerApiKey } from '../../lib/accounts/api-keys.ts'
import { systemClock } from '../../lib/core/clock.ts'
import { AccountExistsError, createAccount } from '../../lib/credits/index.ts'
import { netlifyBlobsPort } from '../../lib/storage/netlify-blobs.ts'
import { STORE_NAME } from '../../netlify/app.ts'

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)))
export const BIN = join(REPO, 'node_modules', '.bin')
const NETLIFY = join(BIN, 'netlify')
/** Site id of the local sandbox when no site is linked (scripts/store.ts). */
const LOCAL_SITE_ID = 'unlinked'

const COPIED = ['netlify', 'lib', 'public', 'package.json', 'netlify.toml', 'tsconfig.json']
/** Where an account's record lands in a project's local Blobs sandbox. */
export const sandboxAccountPath = (root: string, account: string) =>
  join(root, '.netlify', 'blobs-serve', 'entries', LOCAL_SITE_ID, `site:${STORE_NAME}`, 'account', account)
/** The developer's own key for the demo page (scripts/dev.ts) stays where it is. */
const NOT_COPIED = new Set([join(REPO, 'public', 'dev-api-key.json')])

export const secret = () => randomBytes(32).toString('base64url')
/** A key in the format `keys:create` makes: it names its account. */
export const newApiKey = (account: string) => `djk_${account}.${randomBytes(32).toString('base64url')}`

/** A temporary project root: copies of the sources, a symlink to node_modules, no `.netlify/`, no `.env`. */
export async function makeProjectRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'durable-jobs-e2e-'))
  for (const name of COPIED) {
    await cp(join(REPO, name), join(root, name), { recursive: true, filter: (source) => !NOT_COPIED.has(source) })
  }
  await symlink(join(REPO, 'node_modules'), join(root, 'node_modules'), 'dir')
  await mkdir(join(root, '.config'))
  return root
}

/**
 * Registers keys in `<root>/.netlify/blobs-serve` the way scripts/dev.ts does
 * (key, then an account with credits: jobs are charged), then stops the server.
 */
export async function registerKeys(root: string, keys: { apiKey: string; account: string; credits?: number }[]) {
  const token = `e2e-${secret()}`
  const server = new BlobsServer({ directory: join(root, '.netlify', 'blobs-serve'), token })
  const { port } = await server.start()
  try {
    const url = `http://localhost:${port}`
    const store = netlifyBlobsPort(
      getStore({ name: STORE_NAME, siteID: LOCAL_SITE_ID, token, edgeURL: url, uncachedEdgeURL: url, consistency: 'strong' }),
    )
    for (const { apiKey, account, credits } of keys) {
      await registerApiKey(store, systemClock, apiKey, account, 'e2e')
      await createAccount(store, systemClock, account, credits ?? 1000).catch((error: unknown) => {
        if (!(error instanceof AccountExistsError)) throw error
      })
    }
  } finally {
    await server.stop()
  }
}

/**
 * A port that is free now and stays free until a server of ours takes it: it is
 * chosen below the kernel's ephemeral range (32768 and up on Linux), so no
 * `listen(0)` or outgoing connection of another process (a suite beside this
 * one, its Blobs server, its browser) can take it in between.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    const free = await new Promise<boolean>((done) => {
      const server = createServer()
      server.unref()
      server.once('error', () => done(false))
      // Every interface, as netlify dev listens.
      server.listen(port, () => server.close(() => done(true)))
    })
    if (free) return port
    if (attempt === 50) throw new Error('no free port between 20000 and 32000')
  }
}

/**
 * The environment of every netlify-cli child: the caller's, minus anything
 * that could link a real site or leak test-runner state, plus:
 * - node_modules/.bin first on PATH, so `#!/usr/bin/env node` is Node 22;
 * - CI=1: netlify-cli 27.10 never reads NETLIFY_TELEMETRY_DISABLED (only its
 *   global config's `telemetryDisabled`, or CI). `dev` and `functions:invoke`
 *   sent no telemetry in our runs anyway (no `telemetry/request.js` child under
 *   strace); CI=1 keeps it that way and rules out every interactive prompt;
 * - XDG_CONFIG_HOME inside the temp root: no developer login or global config.
 */
export function cliEnv(root: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of Object.keys(env)) {
    // Site links and sandbox contexts, test-runner state, and every setting netlify/app.ts reads.
    const setting = /^(JOBS_|ADMIN_TOKEN$|EVENT_LOG_|MAX_GENERATED_|.*_(SECONDS|HOURS)$)/
    if (/^(NETLIFY_|VITEST|NODE_ENV$|DEBUG$)/.test(name) || setting.test(name)) {
      delete env[name]
    }
  }
  return {
    ...env,
    PATH: `${BIN}:${process.env.PATH ?? ''}`,
    NETLIFY_TELEMETRY_DISABLED: '1',
    CI: '1',
    BROWSER: 'none',
    XDG_CONFIG_HOME: join(root, '.config'),
    ...extra,
  }
}

/**
 * Startup took 9-10 s on an idle 2-CPU machine and up to 50 s with other
 * suites running beside it, so the limit is generous; it still fails, never hangs.
 */
export const STARTUP_TIMEOUT_MS = 120_000

export interface NetlifyDev {
  url: string
  port: number
  pid: number
  /** Everything netlify dev wrote to stdout and stderr so far. */
  output(): string
  /** Milliseconds from spawn until the port answered, and until functions answered. */
  startup: { portMs: number; functionsMs: number }
  /** Stops the whole process group: SIGTERM, then SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>
}

const running = new Set<ChildProcess>()
// Last resort if the runner dies without afterAll: no netlify dev is left behind.
process.once('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL')
})

function killGroup(child: ChildProcess, signal: NodeJS.Signals) {
  try {
    process.kill(-child.pid!, signal)
  } catch {
    // already gone
  }
}

/**
 * Starts `netlify dev` in `root` and resolves once the port accepts
 * connections and the functions are loaded (the "ready" banner comes before
 * the functions are: until then /api/* is answered by the static server).
 * Rejects, after stopping it, if it exits or is not ready within `timeoutMs`.
 */
export async function startNetlifyDev(root: string, env: Record<string, string>, timeoutMs = STARTUP_TIMEOUT_MS): Promise<NetlifyDev> {
  const port = await freePort()
  const args = ['dev', '--offline', '--internal-disable-edge-functions', '--skip-gitignore', '--no-open', '--port', String(port)]
  const startedAt = Date.now()
  const child = spawn(NETLIFY, args, { cwd: root, env: cliEnv(root, env), detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  let log = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (log += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (log += chunk))
  const exited = new Promise<number | string>((done) => {
    child.once('exit', (code, signal) => {
      running.delete(child)
      done(code ?? signal ?? 'unknown')
    })
    child.once('error', (error) => {
      running.delete(child)
      done(error.message)
    })
  })
  let exitStatus: number | string | undefined
  void exited.then((status) => (exitStatus = status))

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) => {
    if (exitStatus !== undefined) return
    killGroup(child, signal)
    const timer = new Promise((done) => setTimeout(done, graceMs).unref())
    if ((await Promise.race([exited, timer])) === undefined) {
      killGroup(child, 'SIGKILL')
      await exited
    }
    // Children in the group (esbuild's service) may outlive the leader by a moment.
    killGroup(child, 'SIGKILL')
  }

  const url = `http://127.0.0.1:${port}`
  const deadline = startedAt + timeoutMs
  const failure = async (why: string) => {
    await stop('SIGKILL', 2000)
    return new Error(`netlify dev ${why}\n--- its output ---\n${log.slice(-4000)}`)
  }
  const answers = async (check: () => Promise<boolean>) => {
    while (Date.now() < deadline) {
      if (exitStatus !== undefined) throw await failure(`exited (${exitStatus}) before it was ready`)
      if (await check().catch(() => false)) return Date.now() - startedAt
      await new Promise((done) => setTimeout(done, 200))
    }
    throw await failure(`was not ready within ${timeoutMs} ms`)
  }
  const portMs = await answers(() => canConnect(port))
  // POST /api/jobs without a key is a 401 only once the jobs function is loaded.
  const functionsMs = await answers(async () => {
    const res = await fetch(`${url}/api/jobs`, { method: 'POST', signal: AbortSignal.timeout(5000) })
    await res.body?.cancel()
    return res.status === 401
  })
  return { url, port, pid: child.pid!, output: () => log, startup: { portMs, functionsMs }, stop }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((done) => {
    fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })
      .then(async (res) => {
        await res.body?.cancel()
        done(true)
      })
      .catch(() => done(false))
  })
}

/** Runs a netlify-cli command to completion (killed after `timeoutMs`). */
export async function runNetlify(
  root: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const startedAt = Date.now()
  const child = spawn(NETLIFY, args, { cwd: root, env: cliEnv(root, env), detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>((done, fail) => {
    child.once('error', fail)
    child.once('close', (exitCode) => done(exitCode))
  }).finally(() => {
    clearTimeout(timer)
    running.delete(child)
  })
  return { code, stdout, stderr, ms: Date.now() - startedAt }
}

export async function removeRoot(root: string) {
  await rm(root, { recursive: true, force: true })
}
