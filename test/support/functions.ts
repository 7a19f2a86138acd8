/**
 * Serves the real function modules over real HTTP, routed by their
 * `config.path` the way Netlify does, so handler tests exercise the same
 * request path as production: submit reaches the worker through a signed
 * HTTP call to `/.netlify/functions/worker-background`, which answers 202
 * and runs in the background, as on Netlify.
 */
import { type Server, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Context } from '@netlify/functions'
import jobs from '../../netlify/functions/jobs.ts'
import job from '../../netlify/functions/job.ts'
import jobEvents from '../../netlify/functions/job-events.ts'
import jobCancel from '../../netlify/functions/job-cancel.ts'
import adminJobs from '../../netlify/functions/admin-jobs.ts'
import worker from '../../netlify/functions/worker-background.ts'
import reaper from '../../netlify/functions/reaper.ts'
import account from '../../netlify/functions/account.ts'
import asset from '../../netlify/functions/asset.ts'
import assets from '../../netlify/functions/assets.ts'
import jobAssets from '../../netlify/functions/job-assets.ts'

type Handler = (req: Request, context: Context) => Promise<Response>

const routes: [RegExp, Handler][] = [
  [/^\/api\/jobs$/, jobs],
  [/^\/api\/jobs\/(?<id>[^/]+)$/, job],
  [/^\/api\/jobs\/(?<id>[^/]+)\/events$/, jobEvents],
  [/^\/api\/jobs\/(?<id>[^/]+)\/cancel$/, jobCancel],
  [/^\/api\/jobs\/(?<id>[^/]+)\/assets$/, jobAssets],
  [/^\/api\/assets$/, assets],
  [/^\/api\/assets\/(?<id>[^/]+)$/, asset],
  [/^\/api\/admin\/jobs$/, adminJobs],
  [/^\/api\/account$/, account],
  [/^\/\.netlify\/functions\/reaper$/, reaper as Handler],
]

export interface FunctionServer {
  url: string
  /** Background runs started and not yet finished. */
  backgroundRuns: Set<Promise<unknown>>
  /** Waits until every background run has finished. */
  idle(): Promise<void>
  /** Every response the server sent, with who asked, for leak scanning. */
  responses: { authorization: string | null; path: string; body: string }[]
  /** When false, worker calls are accepted (202) but not run: a worker that never started. */
  runWorkers: boolean
  stop(): Promise<void>
}

export const contextFor = (params: Record<string, string> = {}) => ({ params }) as unknown as Context

export async function startFunctions(): Promise<FunctionServer> {
  const backgroundRuns = new Set<Promise<unknown>>()
  const responses: FunctionServer['responses'] = []
  const state = { runWorkers: true }
  const server: Server = createServer(async (incoming, outgoing) => {
    const chunks: Buffer[] = []
    for await (const chunk of incoming) chunks.push(chunk as Buffer)
    const url = `http://${incoming.headers.host}${incoming.url}`
    const headers = new Headers()
    for (const [name, value] of Object.entries(incoming.headers)) if (typeof value === 'string') headers.set(name, value)
    const method = incoming.method ?? 'GET'
    const body = method === 'GET' || method === 'HEAD' ? undefined : Buffer.concat(chunks)
    const controller = new AbortController()
    outgoing.on('close', () => controller.abort())
    const req = new Request(url, { method, headers, body, signal: controller.signal })
    const path = new URL(url).pathname

    if (path === '/.netlify/functions/worker-background') {
      outgoing.writeHead(202).end()
      if (!fake.runWorkers) return
      const run = worker(req, contextFor()).catch(() => {})
      backgroundRuns.add(run)
      run.finally(() => backgroundRuns.delete(run))
      return
    }
    for (const [pattern, handler] of routes) {
      const match = pattern.exec(path)
      if (!match) continue
      const res = await handler(req, contextFor({ ...match.groups }))
      // As bytes: downloads are binary. The leak scan reads them as text.
      const bytes = Buffer.from(await res.arrayBuffer())
      responses.push({ authorization: req.headers.get('authorization'), path, body: bytes.toString('utf8') })
      outgoing.writeHead(res.status, Object.fromEntries(res.headers)).end(bytes)
      return
    }
    outgoing.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const fake: FunctionServer = {
    url: `http://127.0.0.1:${port}`,
    backgroundRuns,
    responses,
    get runWorkers() {
      return state.runWorkers
    },
    set runWorkers(value) {
      state.runWorkers = value
    },
    async idle() {
      while (backgroundRuns.size > 0) await Promise.all([...backgroundRuns])
    },
    async stop() {
      await this.idle()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
  return fake
}
