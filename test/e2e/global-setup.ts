/**
 * Global setup of the end-to-end project: one Chromium and one shared
 * `netlify dev` for every suite that can use them, each started only when the
 * first suite asks (running one unrelated file starts neither).
 *
 * Suites run in separate workers, so they ask over HTTP: this process serves
 * `GET /chromium`, `GET /netlify-dev` (and its output so far, `/netlify-dev/output`) on a loopback port it `provide`s as
 * `e2eBroker`; test/e2e/shared.ts is the suites' side. Each answer starts its
 * thing once and hands every caller the same one; teardown stops them.
 */
import { type Server, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { TestProject } from 'vitest/node'
import { launchChromiumServer } from '../browser/chromium.ts'
import { type SharedNetlifyDev, startSharedNetlifyDev } from './shared-server.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Base URL of the broker that hands out the shared Chromium and `netlify dev`. */
    e2eBroker: string
  }
}

export default async function setup(project: TestProject) {
  let chromium: ReturnType<typeof launchChromiumServer> | undefined
  let dev: Promise<SharedNetlifyDev> | undefined

  const broker: Server = createServer((req, res) => {
    const answer = async () => {
      if (req.url === '/chromium') return { wsEndpoint: (await (chromium ??= launchChromiumServer())).wsEndpoint() }
      if (req.url === '/netlify-dev') return (await (dev ??= startSharedNetlifyDev())).info
      if (req.url === '/netlify-dev/output') return { output: dev ? (await dev).dev.output() : '' }
      return undefined
    }
    answer().then(
      (body) => res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? { error: 'not found' })),
      // The failure (no Chromium, netlify dev not ready) goes to the suite that asked, as its error.
      (error: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(error instanceof Error ? error.message : String(error)),
    )
  })
  // Startups take minutes on a loaded machine; the suites' hook timeouts bound the wait.
  broker.requestTimeout = 0
  broker.headersTimeout = 0
  await new Promise<void>((done) => broker.listen(0, '127.0.0.1', done))
  project.provide('e2eBroker', `http://127.0.0.1:${(broker.address() as AddressInfo).port}`)

  return async () => {
    broker.close()
    await Promise.allSettled([
      dev?.then((shared) => shared.stop()),
      chromium?.then((server) => server.close()),
    ])
  }
}
