/**
 * A proxy in front of the local Blobs server that drops, delays and fails
 * requests by rule, so integration tests see the storage faults production
 * can throw at them.
 */
import { type Server, createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'

export type FaultAction =
  | { type: 'pass' }
  /** 503 without forwarding: the write never happened. */
  | { type: 'fail-before'; status?: number }
  /** Forwards, then answers 503: the write happened, its answer was lost. */
  | { type: 'fail-after'; status?: number }
  | { type: 'delay'; ms: number }
  /** Closes the connection without an answer. */
  | { type: 'drop' }

export interface FaultRequest {
  method: string
  path: string
}

export interface FaultProxy {
  url: string
  rule: (request: FaultRequest) => FaultAction
  counts: Record<FaultAction['type'], number>
  stop(): Promise<void>
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const targetUrl = new URL(target)
  const proxy: FaultProxy = {
    url: '',
    rule: () => ({ type: 'pass' }),
    counts: { pass: 0, 'fail-before': 0, 'fail-after': 0, delay: 0, drop: 0 },
    stop: async () => {},
  }
  const server: Server = createServer(async (incoming, outgoing) => {
    const chunks: Buffer[] = []
    for await (const chunk of incoming) chunks.push(chunk as Buffer)
    const action = proxy.rule({ method: incoming.method ?? 'GET', path: incoming.url ?? '/' })
    proxy.counts[action.type]++
    if (action.type === 'fail-before') return void outgoing.writeHead(action.status ?? 503).end()
    if (action.type === 'drop') return void outgoing.socket?.destroy()
    if (action.type === 'delay') await new Promise((resolve) => setTimeout(resolve, action.ms))
    const upstream = httpRequest(
      { host: targetUrl.hostname, port: targetUrl.port, path: incoming.url, method: incoming.method, headers: incoming.headers },
      (response) => {
        const body: Buffer[] = []
        response.on('data', (chunk: Buffer) => body.push(chunk))
        response.on('end', () => {
          if (action.type === 'fail-after') return void outgoing.writeHead(action.status ?? 503).end()
          outgoing.writeHead(response.statusCode ?? 502, response.headers).end(Buffer.concat(body))
        })
      },
    )
    upstream.on('error', () => outgoing.writeHead(502).end())
    upstream.end(Buffer.concat(chunks))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  proxy.stop = async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
  return proxy
}
