/**
 * Where a webhook may go. Checked twice: the URL when it is given (submit,
 * account default), and every address its host resolves to at the moment of
 * each delivery (see send.ts), so a name that points, or later re-points, at
 * a private network cannot turn deliveries into requests inside it (SSRF).
 * Development (`netlify dev`, or WEBHOOK_ALLOW_PRIVATE_TARGETS) also takes
 * plain http to loopback and private addresses, for a receiver on this machine.
 */
import ipaddr from 'ipaddr.js'
import { invalidRequest } from '../core/errors.ts'

export const MAX_WEBHOOK_URL_LENGTH = 2048

export interface TargetPolicy {
  /** Development only: plain http to loopback, and private addresses. */
  allowPrivateTargets: boolean
}

const LOOPBACK_NAMES = /^(localhost|.*\.localhost)$/i

/** Whether an address is on the public internet (not loopback, private, link-local, reserved…). */
export function isPublicAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return false
  let parsed = ipaddr.parse(address)
  if (parsed.kind() === 'ipv6') {
    const v6 = parsed as ipaddr.IPv6
    if (v6.isIPv4MappedAddress()) parsed = v6.toIPv4Address()
    // IPv4-compatible (::a.b.c.d, deprecated): ipaddr.js calls it unicast, but a host that still
    // tunnels ::/96 would reach the IPv4 address inside.
    else if (v6.parts.slice(0, 6).every((part) => part === 0)) return false
  }
  return parsed.range() === 'unicast'
}

/** The host of a URL without IPv6 brackets or a final dot (`localhost.` is localhost). */
const bareHost = (url: URL) => url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '')

function isLoopbackHost(url: URL): boolean {
  const host = bareHost(url)
  if (LOOPBACK_NAMES.test(host)) return true
  return ipaddr.isValid(host) && ipaddr.parse(host).range() === 'loopback'
}

/** Why a URL cannot be a webhook target, or null when it can (its addresses are checked at delivery). */
export function targetProblem(raw: string, policy: TargetPolicy): string | null {
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) return `must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'must be an absolute URL'
  }
  if (url.username || url.password) return 'must not carry a user name or password'
  if (url.hash) return 'must not have a #fragment'
  const local = isLoopbackHost(url)
  if (url.protocol === 'http:') {
    if (!(policy.allowPrivateTargets && local)) return 'must use https (plain http only to localhost in development)'
  } else if (url.protocol !== 'https:') {
    return 'must use https'
  }
  if (policy.allowPrivateTargets) return null
  if (local) return 'must not point at this machine'
  const host = bareHost(url)
  if (ipaddr.isValid(host) && !isPublicAddress(host)) return 'must not point at a private or reserved address'
  return null
}

/** The URL, checked; a 400 naming `path` when it cannot be a target. */
export function checkWebhookUrl(raw: string, policy: TargetPolicy, path = 'webhookUrl'): string {
  const problem = targetProblem(raw, policy)
  if (problem) throw invalidRequest(`"${path}" ${problem}.`, [{ path, message: problem }])
  return new URL(raw).toString()
}

/** The URL as operators see it: its query (which may carry a receiver's token) is hidden. */
export function redactedUrl(raw: string): string {
  try {
    const url = new URL(raw)
    return `${url.origin}${url.pathname}${url.search ? '?…' : ''}`
  } catch {
    return '(invalid)'
  }
}
