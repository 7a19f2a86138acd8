/**
 * The local dev server refuses what it cannot take instead of dying: through
 * the real `netlify dev` (the shared one, test/e2e/shared.ts; patched at
 * install, patches/netlify-cli+27.10.2.patch), a body over the CLI's 6 MB
 * limit gets a 413 in the API's error envelope, and the server keeps serving.
 * That `npm run dev` (a server of its own) calls the reaper on a schedule is
 * test/soak/npm-run-dev.test.ts (`npm run test:soak`); test/dev-reaper.test.ts
 * drives the same schedule against the real reaper in `npm test`.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { type SharedDevInfo, sharedNetlifyDev, sharedNetlifyDevOutput } from './shared.ts'
import { STARTUP_TIMEOUT_MS, newApiKey, registerKeys } from './support.ts'

const apiKey = newApiKey('e2e-dev-server')
let dev: SharedDevInfo

/** A submit whose JSON body is about `megabytes` MB. */
const submitOfSize = (megabytes: number) =>
  fetch(`${dev.url}/api/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ kind: 'summarize', input: { text: 'Durable jobs. '.repeat(Math.round((megabytes * 1e6) / 14)) } }),
    signal: AbortSignal.timeout(60_000),
  })

describe('netlify dev and oversized bodies', () => {
  beforeAll(async () => {
    dev = await sharedNetlifyDev()
    await registerKeys(dev.root, [{ apiKey, account: 'e2e-dev-server' }])
  }, STARTUP_TIMEOUT_MS + 10_000)

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
    expect(await sharedNetlifyDevOutput()).not.toMatch(/Stream body too big/)
  }, 120_000) // 13 MB through the shared server, which other suites keep busy
})
