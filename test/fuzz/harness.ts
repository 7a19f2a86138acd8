/**
 * Shared by the fuzz and security suites: the function server and Blobs server
 * of test/support, raw requests (odd methods, raw paths, header bytes), and
 * snapshots of every store by ETag.
 */
import { type IncomingHttpHeaders, request as httpRequest, Agent } from 'node:http'
import { type Store, listStores } from '@netlify/blobs'
import { type TestBlobs, startBlobs } from '../support/blobs.ts'
import { type FunctionServer, type Route, startFunctions } from '../support/functions.ts'
import { STORE_NAME } from '../../netlify/app.ts'

export { type Handler, type RecordedResponse, type Route, contextFor, discoverRoutes, fillPath, patternFor } from '../support/functions.ts'
export type FunctionHost = FunctionServer

export interface RawRequest {
  method: string
  /** Path and query exactly as sent (not normalized by a URL parser). */
  target: string
  headers: Record<string, string | string[]>
  body?: Buffer | string
}

export interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

const agent = new Agent({ keepAlive: true, maxSockets: 8 })

/** Sends a request byte-for-byte (odd methods, raw paths, latin1 header bytes, duplicate headers). */
export function send(baseUrl: string, request: RawRequest): Promise<RawResponse> {
  const { hostname, port } = new URL(baseUrl)
  // Node sends no Content-Length for a GET body by default; the body would then read as the next request.
  const length = request.body === undefined ? null : Buffer.byteLength(request.body)
  const headers = length === null ? request.headers : { ...request.headers, 'content-length': String(length) }
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { agent, host: hostname, port: Number(port), method: request.method, path: request.target, headers },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(request.body)
  })
}

/** Header values must be bytes: a string with characters above U+00FF is sent as its UTF-8 bytes. */
export const headerBytes = (value: string) =>
  /^[\x00-\xff]*$/.test(value) ? value : Buffer.from(value, 'utf8').toString('latin1')

export interface Env {
  blobs: TestBlobs
  host: FunctionHost
  /** The raw store, for snapshots with ETags. */
  raw: Store
  /** set + delete operations seen by the Blobs server so far. */
  writes(): number
  /** Every key with its ETag: every write gets a fresh random ETag, so equal snapshots mean nothing was written. */
  snapshot(): Promise<Map<string, string>>
}

export async function startEnv(routes?: Route[]): Promise<Env> {
  const blobs = await startBlobs()
  blobs.useAsEnvironment()
  const host = await startFunctions(routes)
  return {
    blobs,
    host,
    raw: blobs.sdkStore(STORE_NAME),
    writes: () => (blobs.ops.set ?? 0) + (blobs.ops.delete ?? 0),
    async snapshot() {
      // Every store (job state, generated assets, whatever comes next), every key, every ETag.
      const { stores } = await listStores({ siteID: blobs.siteID, token: blobs.token, edgeURL: blobs.url, uncachedEdgeURL: blobs.url })
      const names = [...new Set([STORE_NAME, ...stores])]
      const all = new Map<string, string>()
      for (const name of names) {
        for (const blob of (await blobs.sdkStore(name).list()).blobs) all.set(`${name}:${blob.key}`, blob.etag)
      }
      return all
    },
  }
}

export function sameSnapshot(a: Map<string, string>, b: Map<string, string>): string | null {
  for (const [key, etag] of a) {
    if (!b.has(key)) return `deleted ${key}`
    if (b.get(key) !== etag) return `rewrote ${key}`
  }
  for (const key of b.keys()) if (!a.has(key)) return `created ${key}`
  return null
}

/** A valid-looking job id that exists nowhere. */
export const unknownJobId = (random: () => number = Math.random) =>
  `job_${Date.now().toString(36)}${Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join('')}`
