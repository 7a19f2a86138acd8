/**
 * `npm run dev`: everything needed to run locally, then `netlify dev`.
 * - `.env` with a signing secret and an admin token (made once, random);
 * - a development API key for account "dev", kept in `.netlify/dev-api-key`
 *   and registered in the local Blobs sandbox; `netlify dev` gets it as
 *   DEV_TOKEN_API_KEY, with which `/api/dev/token` mints the demo's tokens;
 * - `netlify dev` offline, without Edge Functions (they would download Deno);
 * - the reaper on its production schedule, which `netlify dev` never fires.
 */
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { registerApiKey } from '../lib/accounts/api-keys.ts'
import { systemClock } from '../lib/core/clock.ts'
import { AccountExistsError, createAccount, readAccount } from '../lib/credits/index.ts'
import { config as reaperConfig } from '../netlify/functions/reaper.ts'
import { config as dispatcherConfig } from '../netlify/functions/dispatcher.ts'
import { flags, openStore } from './store.ts'
import { reaperPeriodMs, scheduleReaper } from './dev-reaper.ts'
import { portBusyMessage, portInUse } from './dev-port.ts'

const { port = '8888' } = flags()
if (await portInUse(Number(port))) {
  console.error(portBusyMessage(Number(port)))
  process.exit(1)
}

const root = process.cwd()
const envFile = join(root, '.env')
const keyFile = join(root, '.netlify', 'dev-api-key')
const DEV_CREDITS = 1000
const secret = () => randomBytes(32).toString('base64url')

const env = existsSync(envFile) ? readFileSync(envFile, 'utf8') : ''
const missing = [
  ['JOBS_SIGNING_SECRET', secret()],
  ['ADMIN_TOKEN', secret()],
].filter(([name]) => !new RegExp(`^${name}=`, 'm').test(env))
if (missing.length) {
  writeFileSync(envFile, `${env}${env && !env.endsWith('\n') ? '\n' : ''}${missing.map(([k, v]) => `${k}=${v}`).join('\n')}\n`, { mode: 0o600 })
}
const adminToken = /^ADMIN_TOKEN=(.*)$/m.exec(readFileSync(envFile, 'utf8'))?.[1] ?? ''

mkdirSync(join(root, '.netlify'), { recursive: true })
const apiKey = existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : `djk_dev.${randomBytes(32).toString('base64url')}`
writeFileSync(keyFile, apiKey, { mode: 0o600 })
// The demo page holds no key: it asks GET /api/dev/token for short tokens, which that route
// mints with this key, passed to `netlify dev` below (never to .env, so it is never deployed).
// A key file of earlier versions is removed.
rmSync(join(root, 'public', 'dev-api-key.json'), { force: true })
// Always the local sandbox: the development key and its credits must never reach a deployed site.
const { store, close } = await openStore({ localOnly: true })
await registerApiKey(store, systemClock, apiKey, 'dev', 'local development')
// A new account (or one its key just made, with no history) gets its opening credits; an existing one keeps its balance.
await createAccount(store, systemClock, 'dev', DEV_CREDITS).catch((error: unknown) => {
  if (!(error instanceof AccountExistsError)) throw error
})
const balance = (await readAccount(store, 'dev'))?.record.balance
await close()

const reaperPeriod = reaperPeriodMs(String(reaperConfig.schedule))
const dispatcherPeriod = reaperPeriodMs(String(dispatcherConfig.schedule), {})
console.log(`
  Durable jobs, local development
  API:          http://localhost:${port}/api/jobs
  API key:      ${apiKey}        (account "dev", kept in .netlify/dev-api-key)
  Credits:      ${balance}  (npm run accounts -- grant --account dev --credits 100)
  Demo page:    http://localhost:${port}/  (no key in the page: it gets 15-minute tokens from /api/dev/token, local only)
  Admin token:  ${adminToken}    (from .env)
  Reaper:       every ${reaperPeriod / 1000} s, as scheduled in production (DEV_REAPER_INTERVAL_SECONDS to change)
  Dispatcher:   every ${dispatcherPeriod / 1000} s (starts delayed jobs), as scheduled in production
  Try:  curl -s -X POST http://localhost:${port}/api/jobs -H "Authorization: Bearer ${apiKey}" \\
          -H 'Content-Type: application/json' -d '{"kind":"summarize","input":{"text":"Durable jobs survive restarts. Locks stop double work."}}'
`)

const netlify = spawn(
  join(root, 'node_modules', '.bin', 'netlify'),
  ['dev', '--offline', '--internal-disable-edge-functions', '--port', port, ...(flags().debug ? ['--debug'] : [])],
  { stdio: 'inherit', env: { ...process.env, NETLIFY_TELEMETRY_DISABLED: '1', DEV_TOKEN_API_KEY: apiKey } },
)
const reaper = scheduleReaper({ baseUrl: `http://localhost:${port}`, periodMs: reaperPeriod })
const dispatcher = scheduleReaper({
  baseUrl: `http://localhost:${port}`,
  periodMs: dispatcherPeriod,
  function: { path: '/.netlify/functions/dispatcher', name: 'dispatcher' },
})
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => netlify.kill(signal))
netlify.on('exit', (code) => {
  reaper.stop()
  dispatcher.stop()
  process.exit(code ?? 0)
})
