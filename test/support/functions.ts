/**
 * Serves the real function modules over real HTTP the way Netlify does: every
 * module in `netlify/functions` (found by reading the directory, so a function
 * added later is served without editing this file), routed by its
 * `config.path`, static paths before parametrized ones. A background function
 * answers 202 and runs on; every response is recorded with its status,
 * headers and who asked, and checked against the OpenAPI document
 * (support/openapi-check.ts): a mismatch fails the suite when it stops.
 */
import { readdirSync, statSync } from 'node:fs'
import { type Server, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { basename, extname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Context } from '@netlify/functions'
import { contractChecker } from './openapi-check.ts'

export type Handler = (req: Request, context: Context) => Promise<Response>

export interface Route {
  /** Function name (file name without extension). */
  name: string
  file: string
  /** `config.path` entries, or the default `/.netlify/functions/<name>`. */
  paths: string[]
  patterns: RegExp[]
  /** `config.method`, when the function restricts methods at the routing layer. */
  methods: string[] | null
  /** Names of the `:params` in its path(s). */
  params: string[]
  background: boolean
  scheduled: boolean
  /** Has a custom `config.path` (a public API route, not a `/.netlify/functions/` URL). */
  custom: boolean
  handler: Handler
}

export const FUNCTIONS_DIR = fileURLToPath(new URL('../../netlify/functions/', import.meta.url))
const SOURCE_EXTENSIONS = new Set(['.ts', '.mts', '.js', '.mjs', '.cts', '.cjs'])

/** Every function in `netlify/functions`, imported, with its routing config. */
export async function discoverRoutes(): Promise<Route[]> {
  const routes: Route[] = []
  for (const entry of readdirSync(FUNCTIONS_DIR).sort()) {
    const full = join(FUNCTIONS_DIR, entry)
    let file: string | null = null
    let name: string
    if (statSync(full).isDirectory()) {
      name = entry
      for (const candidate of readdirSync(full)) {
        const stem = basename(candidate, extname(candidate))
        if (SOURCE_EXTENSIONS.has(extname(candidate)) && (stem === 'index' || stem === entry)) file = join(full, candidate)
      }
    } else {
      if (!SOURCE_EXTENSIONS.has(extname(entry)) || entry.endsWith('.d.ts')) continue
      name = basename(entry, extname(entry))
      file = full
    }
    if (!file) continue
    const mod = (await import(pathToFileURL(file).href)) as { default?: Handler; config?: Record<string, unknown> }
    if (typeof mod.default !== 'function') continue
    const config = mod.config ?? {}
    const declared = config.path === undefined ? [] : Array.isArray(config.path) ? (config.path as string[]) : [config.path as string]
    const paths = declared.length > 0 ? declared : [`/.netlify/functions/${name}`]
    const methods =
      config.method === undefined ? null : (Array.isArray(config.method) ? config.method : [config.method]).map((m) => String(m).toUpperCase())
    routes.push({
      name,
      file,
      paths,
      patterns: paths.map(patternFor),
      methods,
      params: [...new Set(paths.flatMap((p) => [...p.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!)))],
      background: name.endsWith('-background'),
      scheduled: config.schedule !== undefined,
      custom: declared.length > 0,
      handler: mod.default,
    })
  }
  return routes
}

/** A Netlify (URLPattern) path as an anchored regex: `:name` is one segment, `*` anything. */
export function patternFor(path: string): RegExp {
  let source = ''
  for (const part of path.split(/(:[A-Za-z_][A-Za-z0-9_]*|\*)/)) {
    if (part === '*') source += '.*'
    else if (part.startsWith(':')) source += `(?<${part.slice(1)}>[^/]+)`
    else source += part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${source}$`)
}

/** Fills a route path's `:params`. */
export const fillPath = (path: string, params: Record<string, string>) =>
  path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_, name: string) => params[name] ?? 'x')

export const contextFor = (params: Record<string, string> = {}, ip?: string) => ({ params, ip }) as unknown as Context

export interface RecordedResponse {
  route: string
  method: string
  path: string
  authorization: string | null
  status: number
  headers: Record<string, string>
  body: string
}

export interface FunctionServer {
  url: string
  routes: Route[]
  /** Every response a routed function gave, with who asked. */
  responses: RecordedResponse[]
  /** Requests the host could not route (Netlify would answer its own 404). */
  unrouted: number
  /** Answers of public routes that do not match the OpenAPI document. */
  contractViolations: string[]
  /** Throws if any answer so far did not match the document (and forgets them). */
  assertContract(): void
  /** When false, background calls are answered 202 and not run. */
  runWorkers: boolean
  backgroundRuns: Set<Promise<unknown>>
  idle(): Promise<void>
  stop(): Promise<void>
}

/** Serves `routes` (by default every function) over real HTTP. Static paths win over parametrized ones, as on Netlify. */
export async function startFunctions(only?: Route[]): Promise<FunctionServer> {
  const routes = only ?? (await discoverRoutes())
  const table = routes
    .flatMap((route) => route.paths.map((path, i) => ({ route, path, pattern: route.patterns[i]! })))
    .filter(({ route }) => !route.scheduled || !route.custom)
    .sort((a, b) => Number(a.path.includes(':') || a.path.includes('*')) - Number(b.path.includes(':') || b.path.includes('*')))
  const backgroundRuns = new Set<Promise<unknown>>()
  const state = { runWorkers: true, unrouted: 0 }
  const responses: RecordedResponse[] = []
  const contract = contractChecker()
  const contractViolations: string[] = []
  const assertContract = () => {
    if (contractViolations.length === 0) return
    const found = contractViolations.splice(0)
    throw new Error(`${found.length} answer(s) do not match the OpenAPI document:\n${found.join('\n')}`)
  }

  const server: Server = createServer({ maxHeaderSize: 64 * 1024 }, async (incoming, outgoing) => {
    try {
      const chunks: Buffer[] = []
      for await (const chunk of incoming) chunks.push(chunk as Buffer)
      const url = `http://${incoming.headers.host}${incoming.url}`
      const headers = new Headers()
      for (const [name, value] of Object.entries(incoming.headers)) {
        if (typeof value === 'string') headers.set(name, value)
        else if (Array.isArray(value)) for (const v of value) headers.append(name, v)
      }
      const method = incoming.method ?? 'GET'
      const body = ['GET', 'HEAD'].includes(method.toUpperCase()) ? undefined : Buffer.concat(chunks)
      const controller = new AbortController()
      outgoing.on('close', () => controller.abort())
      const req = new Request(url, { method, headers, body, signal: controller.signal })
      const path = new URL(url).pathname
      for (const { route, pattern } of table) {
        const match = pattern.exec(path)
        if (!match) continue
        if (route.methods && !route.methods.includes(req.method)) continue
        if (route.background) {
          outgoing.writeHead(202).end()
          if (!state.runWorkers) return
          const run = route.handler(req, contextFor({ ...match.groups })).catch(() => {})
          backgroundRuns.add(run)
          run.finally(() => backgroundRuns.delete(run))
          return
        }
        const res = await route.handler(req, contextFor({ ...match.groups }, incoming.socket.remoteAddress))
        // Bytes, not text: a download's Content-Length counts bytes.
        const bytes = req.method === 'HEAD' ? Buffer.alloc(0) : Buffer.from(await res.arrayBuffer())
        const resHeaders = Object.fromEntries(res.headers)
        const declared = resHeaders['content-length']
        if (declared !== undefined && req.method !== 'HEAD' && Number(declared) !== bytes.length) {
          // A function whose Content-Length lies breaks HTTP framing: make it loud.
          outgoing.writeHead(599, { 'content-type': 'text/plain' }).end(`harness: Content-Length ${declared} but the body has ${bytes.length} bytes`)
          return
        }
        const recorded = { route: route.name, method: req.method, path, authorization: req.headers.get('authorization'), status: res.status, headers: resHeaders, body: bytes.toString('utf8') }
        responses.push(recorded)
        if (route.custom) {
          const violation = contract.check(recorded)
          if (violation) contractViolations.push(violation)
        }
        outgoing.writeHead(res.status, resHeaders).end(bytes)
        return
      }
      state.unrouted++
      outgoing.writeHead(404).end()
    } catch (error) {
      // The harness itself failed (not a function): make it loud, as a 599.
      outgoing.writeHead(599, { 'content-type': 'text/plain' }).end(`harness error: ${String(error)}`)
    }
  })
  server.keepAliveTimeout = 30_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    routes,
    responses,
    get unrouted() {
      return state.unrouted
    },
    contractViolations,
    assertContract,
    get runWorkers() {
      return state.runWorkers
    },
    set runWorkers(value) {
      state.runWorkers = value
    },
    backgroundRuns,
    async idle() {
      while (backgroundRuns.size > 0) await Promise.all([...backgroundRuns])
    },
    async stop() {
      while (backgroundRuns.size > 0) await Promise.all([...backgroundRuns])
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      assertContract()
    },
  }
}
