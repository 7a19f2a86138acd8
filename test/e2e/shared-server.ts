/**
 * The shared `netlify dev` (started by test/e2e/global-setup.ts, in the test
 * runner's own process): a throwaway project root with the browser code built,
 * the `ticker` and `failing` test kinds listed and the `greet` kind added to
 * lib/kinds as the README says (the demo suite's menu must show it without a
 * change to public/); the environment `npm run dev` gives (a
 * signing secret, an admin token, DEV_TOKEN_API_KEY for /api/dev/token); two
 * pages on other origins for CORS, one listed in ALLOWED_ORIGINS and one not;
 * and responses of /stream that close after 2 s (STREAM_LIMIT_SECONDS), so
 * every watch goes through reconnects. Suites that share it register their own
 * accounts and keys (registerKeys on `root`, as `npm run keys:create` does
 * beside a running server) and so never see each other's jobs through their keys.
 */
import { readFile } from 'node:fs/promises'
import { type Server, createServer } from 'node:http'
import { join } from 'node:path'
import { buildClient } from '../../scripts/build-client.ts'
import { addKind, listTickerKind } from '../support/ticker-root.ts'
import { type NetlifyDev, freePort, makeProjectRoot, newApiKey, registerKeys, removeRoot, secret, startNetlifyDev } from './support.ts'

/** The account of the key behind /api/dev/token: the demo page's jobs without a key land there. */
export const DEV_TOKEN_ACCOUNT = 'shared-dev'

/** What a suite gets from `sharedNetlifyDev()` (test/e2e/shared.ts). */
export interface SharedDevInfo {
  url: string
  port: number
  /** The project root it serves: register keys in its sandbox with `registerKeys(root, …)`. */
  root: string
  adminToken: string
  /** The account whose key (DEV_TOKEN_API_KEY) mints the demo page's tokens. */
  devTokenAccount: string
  /** That key, for a suite that submits as the page's account (the demo suite types it in). */
  devTokenApiKey: string
  /** Pages that load the client bundle (`window.durableJobs`) from another origin. */
  origins: { allowed: string; blocked: string }
}

export interface SharedNetlifyDev {
  info: SharedDevInfo
  dev: NetlifyDev
  stop(): Promise<void>
}

/** A frontend on its own origin: it loads the client bundle from there. */
const FRONTEND = `<!doctype html><title>frontend</title><p>another origin</p>
<script type="module">import * as client from './client.js'; window.durableJobs = client</script>`

async function serveFrontend(clientJs: string): Promise<{ origin: string; server: Server }> {
  const port = await freePort()
  const server = createServer((req, res) => {
    if (req.url === '/client.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(clientJs)
    else res.writeHead(200, { 'content-type': 'text/html' }).end(FRONTEND)
  })
  await new Promise<void>((done) => server.listen(port, '127.0.0.1', done))
  return { origin: `http://localhost:${port}`, server }
}

export async function startSharedNetlifyDev(): Promise<SharedNetlifyDev> {
  const root = await makeProjectRoot()
  const frontends: Server[] = []
  try {
    await listTickerKind(root, ['ticker', 'failing'])
    await addKind(root)
    await buildClient({ outdir: join(root, 'public'), env: {} })
    const devTokenKey = newApiKey(DEV_TOKEN_ACCOUNT)
    await registerKeys(root, [{ apiKey: devTokenKey, account: DEV_TOKEN_ACCOUNT, credits: 1000 }])
    const clientJs = await readFile(join(root, 'public', 'client.js'), 'utf8')
    const allowed = await serveFrontend(clientJs)
    const blocked = await serveFrontend(clientJs)
    frontends.push(allowed.server, blocked.server)
    const adminToken = `admin-${secret()}`
    const dev = await startNetlifyDev(root, {
      JOBS_SIGNING_SECRET: secret(),
      ADMIN_TOKEN: adminToken,
      ALLOWED_ORIGINS: `https://app.example.test, ${allowed.origin}`,
      DEV_TOKEN_API_KEY: devTokenKey,
      STREAM_LIMIT_SECONDS: '2',
    })
    const stop = async () => {
      await dev.stop()
      for (const server of frontends) server.close()
      await removeRoot(root)
    }
    return { info: { url: dev.url, port: dev.port, root, adminToken, devTokenAccount: DEV_TOKEN_ACCOUNT, devTokenApiKey: devTokenKey, origins: { allowed: allowed.origin, blocked: blocked.origin } }, dev, stop }
  } catch (error) {
    for (const server of frontends) server.close()
    await removeRoot(root)
    throw error
  }
}
