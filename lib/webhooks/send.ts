/**
 * One webhook request, over node's http(s) with a DNS lookup that refuses
 * non-public addresses (unless the policy allows them): the check happens on
 * the address the socket connects to, so a host that resolves to a public
 * address when checked and a private one when connecting (DNS rebinding)
 * still cannot reach a private network. Redirects are not followed: a 3xx
 * is a failed delivery, so a receiver cannot bounce a delivery inwards.
 */
import { lookup as dnsLookup } from 'node:dns'
import http from 'node:http'
import https from 'node:https'
import type { LookupFunction } from 'node:net'
import { type TargetPolicy, isPublicAddress, targetProblem } from './target.ts'

/** Inside a dispatcher run's margin: its 20 s budget plus this stays under a scheduled function's 30 s. */
export const WEBHOOK_TIMEOUT_MS = 8_000

/** Why a delivery got no answer; `blocked` ones are never retried. */
export class WebhookSendError extends Error {
  override name = 'WebhookSendError'
  readonly reason: 'blocked_address' | 'timeout' | 'connection_failed'
  constructor(reason: WebhookSendError['reason'], message: string) {
    super(message)
    this.reason = reason
  }
}

export interface SendOutcome {
  status: number
}

/** How host names become addresses: the system resolver, or a test's. */
export type Resolve = (hostname: string, callback: (error: Error | null, addresses: { address: string; family: number }[]) => void) => void

const systemResolve: Resolve = (hostname, callback) =>
  dnsLookup(hostname, { all: true }, (error, addresses) => callback(error, error ? [] : addresses))

const filteringLookup =
  (policy: TargetPolicy, resolve: Resolve): LookupFunction =>
  (hostname, options, callback) => {
    resolve(hostname, (error, addresses) => {
      if (error) return callback(error as NodeJS.ErrnoException, '', 4)
      const list = addresses
      const refused = policy.allowPrivateTargets ? undefined : list.find((entry) => !isPublicAddress(entry.address))
      if (refused || list.length === 0) {
        const blocked = new WebhookSendError('blocked_address', `${hostname} resolves to an address webhooks may not reach`)
        return callback(blocked as NodeJS.ErrnoException, '', 4)
      }
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: typeof list) => void)(null, list)
      callback(null, list[0]!.address, list[0]!.family)
    })
  }

/** POSTs `body`; resolves with the answer's status (any), rejects with WebhookSendError when there is none. */
export function sendWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  policy: TargetPolicy,
  { resolveHost = systemResolve, timeoutMs = WEBHOOK_TIMEOUT_MS }: { resolveHost?: Resolve; timeoutMs?: number } = {},
): Promise<SendOutcome> {
  const problem = targetProblem(url, policy)
  if (problem) return Promise.reject(new WebhookSendError('blocked_address', `target refused: ${problem}`))
  const target = new URL(url)
  const client = target.protocol === 'https:' ? https : http
  return new Promise((resolve, reject) => {
    const req = client.request(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': 'durable-jobs-webhooks/1' },
        lookup: filteringLookup(policy, resolveHost),
        agent: false,
      },
      (res) => {
        clearTimeout(deadline)
        // Only the status counts: the body is not read (nor logged), and the connection is
        // closed at once, so a receiver that drips its body cannot hold a function open.
        res.on('error', () => {})
        res.destroy()
        resolve({ status: res.statusCode ?? 0 })
      },
    )
    // The whole exchange, not just an idle socket: a slow DNS answer or a slow drip of headers counts too.
    const deadline = setTimeout(() => req.destroy(new WebhookSendError('timeout', `no answer within ${timeoutMs} ms`)), timeoutMs)
    req.on('error', (error) => {
      clearTimeout(deadline)
      reject(error instanceof WebhookSendError ? error : new WebhookSendError('connection_failed', (error as NodeJS.ErrnoException).code ?? 'connection failed'))
    })
    req.end(body)
  })
}
