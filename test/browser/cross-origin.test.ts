/**
 * A frontend on another origin, in a real Chromium, against the shared real
 * `netlify dev` (test/e2e/shared.ts) with `ALLOWED_ORIGINS` set: it submits with a submit-scoped
 * token (the CORS preflight passes), watches with the job's watch token, and
 * cannot read another job with it. A page on an origin not listed is
 * blocked by the browser. The pages load the real client bundle.
 */
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type SharedDevInfo, sharedNetlifyDev } from '../e2e/shared.ts'
import { newApiKey, registerKeys } from '../e2e/support.ts'
import { launchChromium } from './support.ts'

const API_KEY = newApiKey('crossorigin')
// The shared `netlify dev` lists `allowed` in ALLOWED_ORIGINS (with https://app.example.test), not `blocked`;
// both pages load the real client bundle.
let dev: SharedDevInfo | undefined
let browser: Browser | undefined
let allowedOrigin = ''
let blockedOrigin = ''

beforeAll(async () => {
  browser = await launchChromium()
  dev = await sharedNetlifyDev()
  ;({ allowed: allowedOrigin, blocked: blockedOrigin } = dev.origins)
  await registerKeys(dev.root, [{ apiKey: API_KEY, account: 'crossorigin', credits: 100 }])
}, 180_000)

afterAll(async () => {
  await browser?.close()
})

const api = async (path: string, init: RequestInit & { json?: unknown } = {}) => {
  const res = await fetch(`${dev!.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${API_KEY}`, ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
  })
  return { status: res.status, body: await res.json() }
}

/** What the browser refused or failed, for the failure message. */
const problems: string[] = []

async function openAt(origin: string): Promise<Page> {
  const page = await browser!.newPage()
  page.on('requestfailed', (request) => problems.push(`${request.method()} ${request.url()}: ${request.failure()?.errorText}`))
  page.on('console', (message) => problems.push(`console ${message.type()}: ${message.text()}`))
  await page.goto(`${origin}/`)
  await page.waitForFunction(() => 'durableJobs' in window)
  return page
}

describe('a page on another origin', { timeout: 240_000 }, () => {
  it('submits with a submit-scoped token, watches with the watch token, and cannot read job B with job A’s token', async () => {
    const minted = await api('/api/tokens', { method: 'POST', json: { scope: { submit: ['summarize'] }, ttlSeconds: 600 } })
    expect(minted.status).toBe(201)
    const other = await api('/api/jobs', { method: 'POST', json: { kind: 'summarize', input: { text: 'Job B belongs to the backend. Nobody else reads it.' } } })
    expect(other.status).toBe(202)

    const page = await openAt(allowedOrigin)
    const seen = await page.evaluate(
      async ({ baseUrl, token, jobB }) => {
        const { createClient, ApiError } = (window as any).durableJobs
        const submitter = createClient({ baseUrl, token })
        const { job } = await submitter.submitJob('summarize', { text: 'A page on another origin submits this. It watches with a token. No key is here.' })
        const watcher = createClient({ baseUrl, token: job.watchToken })
        const types: string[] = []
        for await (const event of watcher.watchJob(job.jobId, { waitSeconds: 5, signal: AbortSignal.timeout(60_000) })) types.push(event.type)
        const status = await watcher.getJob(job.jobId)
        const refused = async (call: () => Promise<unknown>) =>
          call().then(
            () => 'allowed',
            (error: unknown) => (error instanceof ApiError ? `${(error as { status: number }).status} ${(error as { code: string }).code}` : `network: ${String(error)}`),
          )
        return {
          origin: location.origin,
          types,
          status: status.status,
          // Job A's token on job B: exactly a missing job.
          readB: await refused(() => watcher.getJob(jobB)),
          feedB: await refused(() => watcher.request('GET', `/api/jobs/${jobB}/events`)),
          cancelA: await refused(() => watcher.cancelJob(job.jobId)),
          submitWithWatch: await refused(() => watcher.submitJob('summarize', { text: 'More. Work.' })),
          renderWithSubmit: await refused(() => submitter.submitJob('render', { width: 8, height: 8, maxIterations: 10 })),
          // What the page may read of a response header, thanks to Access-Control-Expose-Headers.
          location: (await fetch(`${baseUrl}/api/jobs`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ kind: 'summarize', input: { text: 'Read the Location header. From another origin.' } }),
          })).headers.get('location'),
        }
      },
      { baseUrl: dev!.url, token: minted.body.token as string, jobB: other.body.jobId as string },
    )
    expect(seen.origin, problems.join('\n')).toBe(allowedOrigin)
    expect(seen.types[0]).toBe('started')
    expect(seen.types.at(-1)).toBe('done')
    expect(seen.status).toBe('complete')
    expect(seen.readB).toBe('404 not_found')
    expect(seen.feedB).toBe('404 not_found')
    expect(seen.cancelA).toBe('404 not_found')
    expect(seen.submitWithWatch).toBe('403 token_scope')
    expect(seen.renderWithSubmit).toBe('403 token_scope')
    expect(seen.location).toMatch(/^\/api\/jobs\/job_/)
    await page.close()
  })

  it('on an origin not listed, the browser blocks the call (no grant), and nothing is submitted', async () => {
    const minted = await api('/api/tokens', { method: 'POST', json: { scope: { submit: ['summarize'] } } })
    const before = (await api('/api/account')).body.balance
    const page = await openAt(blockedOrigin)
    const outcome = await page.evaluate(
      async ({ baseUrl, token }) => {
        const { createClient } = (window as any).durableJobs
        const preflighted = await createClient({ baseUrl, token })
          .submitJob('summarize', { text: 'Blocked. This never runs.' })
          .then(() => 'sent', (error: unknown) => `${(error as Error).name}: ${(error as Error).message}`)
        // A simple GET needs no preflight: it reaches the server, but the page may not read the answer.
        const simple = await fetch(`${baseUrl}/api/jobs/job_x?token=${token}`).then(() => 'read', (error: unknown) => (error as Error).name)
        return { preflighted, simple }
      },
      { baseUrl: dev!.url, token: minted.body.token as string },
    )
    expect(outcome.preflighted).toMatch(/^TypeError: Failed to fetch/)
    expect(outcome.simple).toBe('TypeError')
    expect((await api('/api/account')).body.balance).toBe(before)
    await page.close()
  })
})
