/**
 * The local-development token route (`GET /api/dev/token`): under
 * `netlify dev` with the key `npm run dev` passes, it mints short tokens for
 * the demo page; anywhere else it does not exist (404, nothing read).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import devTokenRoute from '../netlify/functions/dev-token.ts'
import { testApi } from './support/api.ts'
import { contextFor } from './support/functions.ts'
import { slow } from './support/kinds.ts'

const api = testApi({ kinds: [slow], accounts: { dev: 100 } })
const { call } = api
beforeAll(async () => {
  await api.start()
})
afterAll(() => api.stop())
const enable = () => {
  process.env.NETLIFY_DEV = 'true'
  process.env.DEV_TOKEN_API_KEY = api.key('dev')
}
afterEach(() => {
  delete process.env.NETLIFY_DEV
  delete process.env.DEV_TOKEN_API_KEY
})

describe('under netlify dev, with the development key', () => {
  it('mints a 15-minute submit token for every kind, which submits; the job is watched with its watch token', async () => {
    enable()
    const res = await call('/api/dev/token', { key: null })
    expect(res.status).toBe(200)
    const minted = await res.json()
    expect(minted).toMatchObject({ account: 'dev', actions: ['submit'], scope: { submit: expect.arrayContaining(['summarize', 'render', 'slow']) } })
    const ttl = Date.parse(minted.expiresAt) - Date.now()
    expect(ttl).toBeGreaterThan(14 * 60_000)
    expect(ttl).toBeLessThanOrEqual(15 * 60_000)
    expect(JSON.stringify(minted)).not.toContain(api.key('dev'))
    const submitted = await call('/api/jobs', { method: 'POST', key: minted.token, json: { kind: 'slow', input: { steps: 300, delayMs: 20 } } })
    expect(submitted.status).toBe(202)
    const job = await submitted.json()
    expect((await call(`/api/jobs/${job.jobId}`, { key: job.watchToken })).status).toBe(200)

    // ?job= gives a read-and-cancel token for that job (the demo's Cancel button, a reload).
    const forJob = await (await call(`/api/dev/token?job=${job.jobId}`, { key: null })).json()
    expect(forJob).toMatchObject({ scope: { job: job.jobId }, actions: ['read', 'cancel'] })
    expect([200, 202]).toContain((await call(`/api/jobs/${job.jobId}/cancel`, { method: 'POST', key: forJob.token })).status)
    await api.idle()
    expect((await (await call(`/api/jobs/${job.jobId}`, { key: forJob.token })).json()).status).toBe('canceled')
    const bad = await call('/api/dev/token?job=job_nope', { key: null })
    expect(bad.status).toBe(400)
    expect((await bad.json()).error.code).toBe('invalid_request')
  })
})

describe('anywhere else the route does not exist', () => {
  it('answers 404 without netlify dev, without the key, in a deploy context, or on a host or from an address that is not this machine; nothing is read', async () => {
    const refused: Response[] = []
    const ops = { ...api.blobs.ops }
    refused.push(await call('/api/dev/token', { key: null }))
    process.env.NETLIFY_DEV = 'true'
    refused.push(await call('/api/dev/token', { key: null }))
    enable()
    for (const context of ['production', 'deploy-preview', 'branch-deploy']) {
      refused.push(await call('/api/dev/token', { key: null, headers: { 'x-nf-deploy-context': context } }))
    }
    for (const host of ['https://my-site.netlify.app', 'http://192.168.1.20:8888', 'http://localhost.example.com:8888']) {
      refused.push(await devTokenRoute(new Request(`${host}/api/dev/token`), contextFor({}, '127.0.0.1')))
    }
    // Another machine on the network naming localhost in its Host header: its address gives it away.
    for (const ip of ['192.168.1.7', '10.0.0.2', undefined]) {
      refused.push(await devTokenRoute(new Request('http://localhost:8888/api/dev/token'), contextFor({}, ip)))
    }
    delete process.env.NETLIFY_DEV
    process.env.CONTEXT = 'production'
    try {
      refused.push(await call('/api/dev/token', { key: null }))
    } finally {
      delete process.env.CONTEXT
    }
    for (const res of refused) {
      expect(res.status).toBe(404)
      expect((await res.json()).error.code).toBe('not_found')
    }
    expect(api.blobs.ops).toEqual(ops)
  })
})
