/**
 * The local dev server refuses what it cannot take instead of dying: through
 * the real `netlify dev` (patched at install, patches/netlify-cli+27.10.2.patch),
 * a body over the CLI's 6 MB limit gets a 413 in the API's error envelope, and
 * the server keeps serving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type NetlifyDev, STARTUP_TIMEOUT_MS, makeProjectRoot, newApiKey, registerKeys, removeRoot, secret, startNetlifyDev } from './support.ts'

const apiKey = newApiKey()
let root: string
let dev: NetlifyDev

beforeAll(async () => {
  root = await makeProjectRoot()
  await registerKeys(root, [{ apiKey, account: 'e2e-dev-server' }])
  dev = await startNetlifyDev(root, { JOBS_SIGNING_SECRET: secret(), ADMIN_TOKEN: secret() })
}, STARTUP_TIMEOUT_MS + 10_000)

afterAll(async () => {
  await dev?.stop()
  if (root) await removeRoot(root)
})

/** A submit whose JSON body is about `megabytes` MB. */
const submitOfSize = (megabytes: number) =>
  fetch(`${dev.url}/api/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'summarize', input: { text: 'Durable jobs. '.repeat(Math.round((megabytes * 1e6) / 14)) } }),
    signal: AbortSignal.timeout(60_000),
  })

describe('netlify dev and oversized bodies', () => {
  it('answers 413 in the error envelope for 8 MB and for 5 MB, and keeps serving', async () => {
    for (const megabytes of [8, 5]) {
      const res = await submitOfSize(megabytes)
      expect(res.status, `${megabytes} MB`).toBe(413)
      const body = (await res.json()) as { error: { code: string; message: string } }
      expect(body.error.code).toBe('payload_too_large')
      expect(body.error.message.length).toBeGreaterThan(0)
    }

    // Still serving: a normal submit is accepted and its job can be read.
    const accepted = await fetch(`${dev.url}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'summarize', input: { text: 'Durable jobs survive restarts. Locks stop double work.' } }),
    })
    expect(accepted.status, await accepted.clone().text()).toBe(202)
    const { jobId } = (await accepted.json()) as { jobId: string }
    const status = await fetch(`${dev.url}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${apiKey}` } })
    expect(status.status).toBe(200)
    expect(dev.output()).not.toMatch(/Stream body too big/)
  })
})
