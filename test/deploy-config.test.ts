/**
 * Deploy configuration: a deploy missing its configuration refuses before it
 * writes anything, and a deploy that is not production keeps its data apart
 * from production's (Blobs stores are site-wide).
 */
import type { Context } from '@netlify/functions'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { createApiKey } from '../lib/accounts/api-keys.ts'
import { systemClock } from '../lib/core/clock.ts'
import { ASSET_STORE_NAME, STORE_NAME, deployContextOf, storeNamesFor } from '../netlify/app.ts'
import submit from '../netlify/functions/jobs.ts'
import status from '../netlify/functions/job.ts'
import { testApi } from './support/api.ts'
import type { TestBlobs } from './support/blobs.ts'
import { slow } from './support/kinds.ts'

const PREVIEW_STORE = `${STORE_NAME}--deploy-preview`
const api = testApi({ kinds: [slow], accounts: { 'acct-prod': null } })
let blobs: TestBlobs
let productionKey: string

beforeAll(async () => {
  await api.start()
  api.runWorkers = false // the job stays queued: what submit wrote is what is stored
  blobs = api.blobs
  productionKey = api.key('acct-prod')
})
afterAll(() => api.stop())
afterEach(() => {
  process.env.JOBS_SIGNING_SECRET = api.signingSecret
  delete process.env.JOBS_STORE_SCOPE
  vi.restoreAllMocks()
})

/** Every key in every store this suite touches. */
async function everything(): Promise<string[]> {
  const all: string[] = []
  for (const name of [STORE_NAME, ASSET_STORE_NAME, PREVIEW_STORE, `${ASSET_STORE_NAME}--deploy-preview`]) {
    const { keys } = await blobs.port(name).list('')
    all.push(...keys.map((key) => `${name}:${key}`))
  }
  return all.sort()
}

const submitBody = (resource: string) => JSON.stringify({ kind: 'slow', input: { steps: 1, delayMs: 0, resource } })

describe('a deploy without its configuration', () => {
  for (const [label, secret] of [
    ['no JOBS_SIGNING_SECRET', undefined],
    ['a JOBS_SIGNING_SECRET too short to be safe', 'short-secret-value'],
  ] as const) {
    it(`with ${label}: submit answers 500 misconfigured, writes nothing, and says why only in the log`, async () => {
      if (secret === undefined) delete process.env.JOBS_SIGNING_SECRET
      else process.env.JOBS_SIGNING_SECRET = secret
      const logged: string[] = []
      vi.spyOn(console, 'error').mockImplementation((line: unknown) => void logged.push(String(line)))
      const before = await everything()

      const res = await submit(
        new Request('http://127.0.0.1:9/api/jobs', {
          method: 'POST',
          headers: { authorization: `Bearer ${productionKey}`, 'content-type': 'application/json' },
          body: submitBody('misconfigured'),
        }),
        {} as Context,
      )

      expect(res.status).toBe(500)
      const body = (await res.json()) as { error: { code: string; message: string } }
      expect(body.error.code).toBe('misconfigured')
      expect(body.error.message).not.toMatch(/JOBS_SIGNING_SECRET|short-secret/)
      expect(await everything()).toEqual(before)
      expect(logged.join('\n')).toContain('JOBS_SIGNING_SECRET must be set')
      expect(logged.join('\n')).not.toContain('short-secret-value')
    })
  }

  it('with an unknown JOBS_STORE_SCOPE: 500 misconfigured, nothing written', async () => {
    process.env.JOBS_STORE_SCOPE = 'everything'
    vi.spyOn(console, 'error').mockImplementation(() => {})
    const before = await everything()
    const res = await fetch(`${api.url}/api/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${productionKey}`, 'content-type': 'application/json', 'x-nf-deploy-context': 'deploy-preview' },
      body: submitBody('bad-scope'),
    })
    expect(res.status).toBe(500)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('misconfigured')
    expect(await everything()).toEqual(before)
  })

  it('with JOB_RETENTION_HOURS under 1 (a job must outlive its reservation): 500 misconfigured, nothing written', async () => {
    process.env.JOB_RETENTION_HOURS = '0.5'
    try {
      vi.spyOn(console, 'error').mockImplementation(() => {})
      const before = await everything()
      const res = await fetch(`${api.url}/api/jobs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${productionKey}`, 'content-type': 'application/json' },
        body: submitBody('short-retention'),
      })
      expect(res.status).toBe(500)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('misconfigured')
      expect(await everything()).toEqual(before)
    } finally {
      delete process.env.JOB_RETENTION_HOURS
    }
  })
})

describe('deploy contexts', () => {
  it('names stores per context; production and local development keep the plain names', () => {
    const env = {}
    expect(storeNamesFor('production', env)).toEqual({ jobs: 'durable-jobs', assets: 'generated' })
    expect(storeNamesFor('', env)).toEqual({ jobs: 'durable-jobs', assets: 'generated' })
    expect(storeNamesFor('dev', env)).toEqual({ jobs: 'durable-jobs', assets: 'generated' })
    expect(storeNamesFor('deploy-preview', env)).toEqual({ jobs: 'durable-jobs--deploy-preview', assets: 'generated--deploy-preview' })
    expect(storeNamesFor('branch-deploy', env)).toEqual({ jobs: 'durable-jobs--branch-deploy', assets: 'generated--branch-deploy' })
    expect(storeNamesFor('deploy-preview', { JOBS_STORE_SCOPE: 'production' })).toEqual({ jobs: 'durable-jobs', assets: 'generated' })
    // Anything a header could carry becomes a valid store name (no '/', at most 64 bytes).
    const odd = storeNamesFor('Feature/ÜBER long branch name '.repeat(4), env)
    expect(odd.jobs).toMatch(/^durable-jobs--[a-z0-9-]{1,40}$/)
  })

  it('reads the context Netlify sends with the request, then CONTEXT, else production', () => {
    const req = (headers: Record<string, string> = {}) => new Request('https://example.test/api/jobs', { headers })
    expect(deployContextOf(req({ 'x-nf-deploy-context': 'deploy-preview' }), {})).toBe('deploy-preview')
    expect(deployContextOf(req(), { CONTEXT: 'branch-deploy' })).toBe('branch-deploy')
    expect(deployContextOf(req(), {})).toBe('')
  })

  it("a Deploy Preview neither reads nor writes production's data unless told to", async () => {
    const asPreview = (path: string, key: string, init: RequestInit = {}) =>
      fetch(`${api.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'x-nf-deploy-context': 'deploy-preview' },
      })
    const productionBefore = (await everything()).filter((key) => key.startsWith(`${STORE_NAME}:`))

    // Production's API keys are production's: the preview does not know them.
    expect((await asPreview('/api/jobs', productionKey, { method: 'POST', body: submitBody('p1') })).status).toBe(401)

    // With a key of its own, the preview's job lives in the preview's store only.
    const previewKey = await createApiKey(blobs.port(PREVIEW_STORE), systemClock, 'acct-preview')
    const accepted = await asPreview('/api/jobs', previewKey, { method: 'POST', body: submitBody('p2') })
    expect(accepted.status).toBe(202)
    const { jobId } = (await accepted.json()) as { jobId: string }
    expect((await blobs.port(PREVIEW_STORE).read(`queue/${jobId}`)) !== null).toBe(true)
    expect((await asPreview(`/api/jobs/${jobId}`, previewKey)).status).toBe(200)

    // The worker works in the preview's stores too: the context travels in the signed call, not in a header.
    api.runWorkers = true
    try {
      const ran = await asPreview('/api/jobs', previewKey, { method: 'POST', body: submitBody('p4') })
      expect(ran.status).toBe(202)
      const ranJob = ((await ran.json()) as { jobId: string }).jobId
      await api.idle()
      expect(((await (await asPreview(`/api/jobs/${ranJob}`, previewKey)).json()) as { status: string }).status).toBe('complete')
    } finally {
      api.runWorkers = false
    }
    expect((await everything()).filter((key) => key.startsWith(`${STORE_NAME}:`))).toEqual(productionBefore)

    // JOBS_STORE_SCOPE=production is the explicit way in.
    process.env.JOBS_STORE_SCOPE = 'production'
    const shared = await asPreview('/api/jobs', productionKey, { method: 'POST', body: submitBody('p3') })
    expect(shared.status).toBe(202)
    const sharedJob = ((await shared.json()) as { jobId: string }).jobId
    expect((await blobs.port(STORE_NAME).read(`queue/${sharedJob}`)) !== null).toBe(true)
    const seenFromProduction = await status(
      new Request(`${api.url}/api/jobs/${sharedJob}`, { headers: { authorization: `Bearer ${productionKey}` } }),
      { params: { id: sharedJob } } as unknown as Context,
    )
    expect(seenFromProduction.status).toBe(200)
  })
})
