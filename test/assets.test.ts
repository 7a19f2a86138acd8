/**
 * Generated assets: the `render` kind end to end through the real function
 * modules over HTTP and the real local Blobs server (download, listings,
 * tenant isolation, the size cap, bad input), then the lifecycle at the
 * domain level with a clock the test moves (orphans, retention).
 */
import { createHash } from 'node:crypto'
import { PNG } from 'pngjs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { loadOwnedAsset, saveJobAsset } from '../lib/assets/assets.ts'
import { createAccount } from '../lib/credits/index.ts'
import type { Deps } from '../lib/core/deps.ts'
import { JobFailure } from '../lib/core/errors.ts'
import { readState } from '../lib/jobs/state.ts'
import { type JobKind, defineJob } from '../lib/kinds/define.ts'
import { reap } from '../lib/reaper/reap.ts'
import type { AssetPort } from '../lib/storage/asset-port.ts'
import { keys } from '../lib/storage/keys.ts'
import { memoryAssetPort } from '../lib/storage/memory-assets.ts'
import type { BlobPort } from '../lib/storage/port.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { runJob } from '../lib/jobs/worker.ts'
import { testApi } from './support/api.ts'
import { manualClock, testDeps } from './support/deps.ts'

const api = testApi({ accounts: { 'acct-a': 1000, 'acct-b': 1000 } })
const { call, follow } = api
let store: BlobPort
let generated: AssetPort
let keyA: string
let keyB: string

beforeAll(async () => {
  delete process.env.MAX_GENERATED_ASSET_BYTES
  await api.start()
  store = api.store
  generated = api.generated
  keyA = api.key('acct-a')
  keyB = api.key('acct-b')
})
afterAll(() => api.stop())
beforeEach(() => {
  api.runWorkers = true
})

const submit = (json: unknown, key = keyA) => call('/api/jobs', { method: 'POST', json, key })

/** Every key of both stores, with content (job store) or metadata (generated files). */
const everything = async () => ({ jobs: await api.contents(), files: await api.files() })

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex')

describe('a render job, through the HTTP API', () => {
  let jobId: string
  let asset: { assetId: string; url: string; sha256: string; bytes: number; filename: string; contentType: string }

  beforeAll(async () => {
    const res = await submit({ kind: 'render', input: { width: 320, height: 200, maxIterations: 300, canvas: 'hero' }, sourceTaskId: 'task:42' })
    expect(res.status).toBe(202)
    jobId = (await res.json()).jobId
  })

  it('runs to done with progress by bands, an asset_created event, and the asset on done and on the status', async () => {
    const { events, feed } = await follow(jobId)
    expect(feed.status).toBe('complete')
    const percents = events.filter((e) => e.type === 'progress').map((e) => e.data.percent)
    expect(percents.length).toBeGreaterThan(10)
    expect(percents).toEqual([...percents].sort((a, b) => a - b))
    const created = events.filter((e) => e.type === 'asset_created')
    expect(created).toHaveLength(1)
    // The feed hands out signed links (see test/asset-links.test.ts); the rest of this file uses the plain path with a key.
    const plain = <T extends { url: string }>(listed: T) => ({ ...listed, url: listed.url.split('?')[0]! })
    expect(created[0]!.data.asset.url).toMatch(/^\/api\/assets\/asset_\w+\?exp=\d+&sig=[\w-]{43}$/)
    asset = plain(created[0]!.data.asset)
    expect(asset).toMatchObject({ filename: 'hero-320x200.png', contentType: 'image/png', url: `/api/assets/${asset.assetId}` })
    expect(asset.assetId).toMatch(/^asset_[0-9a-z]{8,11}[0-9a-f]{32}$/)
    const done = events.at(-1)!
    expect(done.type).toBe('done')
    expect(done.data.result).toEqual({ assetId: asset.assetId, url: asset.url, width: 320, height: 200 }) // the handler's own result, as it returned it
    expect(done.data.assets.map(plain)).toEqual([asset])
    const status = await (await call(`/api/jobs/${jobId}`)).json()
    // The status hands out a signed link in place of the stored path (see test/asset-links.test.ts).
    expect(status).toMatchObject({ status: 'complete', sourceTaskId: 'task:42', assets: [{ ...asset, url: expect.stringMatching(/\?exp=\d+&sig=/) }] })
    expect(status.assets[0].url.startsWith(`${asset.url}?`)).toBe(true)
  })

  it('downloads the PNG: decodes to the requested size; headers and bytes match the metadata; If-None-Match gives 304', async () => {
    const res = await call(asset.url)
    expect(res.status).toBe(200)
    const bytes = Buffer.from(await res.arrayBuffer())
    expect(res.headers.get('content-type')).toBe('image/png')
    expect(res.headers.get('content-length')).toBe(String(bytes.byteLength))
    expect(bytes.byteLength).toBe(asset.bytes)
    expect(sha256(bytes)).toBe(asset.sha256)
    expect(res.headers.get('etag')).toBe(`"${asset.sha256}"`)
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="hero-320x200.png"; filename*=UTF-8''hero-320x200.png`)
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    const png = PNG.sync.read(bytes)
    expect([png.width, png.height]).toEqual([320, 200])
    // Not one flat colour: the set (black) and its outside both show.
    const centre = (100 * 320 + 200) * 4 // (-0.75 + 0.3, 0) lies inside the main cardioid
    expect([...png.data.subarray(centre, centre + 3)]).toEqual([0, 0, 0])
    expect([...png.data.subarray(0, 3)]).not.toEqual([0, 0, 0])

    const again = await call(asset.url, { headers: { 'if-none-match': `W/"nope", "${asset.sha256}"` } })
    expect(again.status).toBe(304)
    expect((await again.arrayBuffer()).byteLength).toBe(0)
    expect((await call(asset.url, { headers: { 'if-none-match': '"other"' } })).status).toBe(200)
  })

  it('lists it by job and by source task', async () => {
    const byJob = await (await call(`/api/jobs/${jobId}/assets`)).json()
    expect(byJob.jobId).toBe(jobId)
    expect(byJob.assets).toEqual([
      expect.objectContaining({
        ...asset,
        url: expect.stringMatching(new RegExp(`^${asset.url}\\?exp=\\d+&sig=[\\w-]{43}$`)),
        jobId,
        sourceTaskId: 'task:42',
        createdAt: expect.any(String),
        expiresAt: expect.any(String),
      }),
    ])
    expect(Date.parse(byJob.assets[0].expiresAt) - Date.parse(byJob.assets[0].createdAt)).toBe(168 * 3600_000)
    const byTask = await (await call('/api/assets?sourceTaskId=task:42')).json()
    expect(byTask).toEqual({ sourceTaskId: 'task:42', assets: byJob.assets })
    expect((await (await call('/api/assets?sourceTaskId=task:43')).json()).assets).toEqual([])
    expect(JSON.stringify(byJob)).not.toContain('acct-a')
  })

  it('another account gets 404 on the download and the job listing, and nothing for the task', async () => {
    const other = await call(asset.url, { key: keyB })
    expect(other.status).toBe(404)
    const missing = await call(`/api/assets/asset_${'0'.repeat(8)}${'a'.repeat(32)}`)
    expect(missing.status).toBe(404)
    expect(await other.json()).toEqual(await missing.json()) // indistinguishable
    expect((await call(`/api/jobs/${jobId}/assets`, { key: keyB })).status).toBe(404)
    const task = await call('/api/assets?sourceTaskId=task:42', { key: keyB })
    expect(task.status).toBe(200)
    expect((await task.json()).assets).toEqual([])
  })

  it('a second render on the same canvas, or for the same task, gets 409 while the first is live', async () => {
    api.runWorkers = false
    const first = await (await submit({ kind: 'render', input: { width: 8, height: 8, maxIterations: 10, canvas: 'busy' } })).json()
    const second = await submit({ kind: 'render', input: { width: 16, height: 16, maxIterations: 10, canvas: 'busy' } })
    expect(second.status).toBe(409)
    expect((await second.json()).holder.jobId).toBe(first.jobId)
    const byTask = await (await submit({ kind: 'render', input: { width: 8, height: 8, maxIterations: 10 }, sourceTaskId: 'task:busy' })).json()
    const sameTask = await submit({ kind: 'render', input: { width: 9, height: 9, maxIterations: 10 }, sourceTaskId: 'task:busy' })
    expect(sameTask.status).toBe(409)
    // Without a canvas or a task there is nothing to lock.
    expect((await submit({ kind: 'render', input: { width: 8, height: 8, maxIterations: 10 } })).status).toBe(202)
    expect((await submit({ kind: 'render', input: { width: 8, height: 8, maxIterations: 10 } })).status).toBe(202)
    for (const id of [first.jobId, byTask.jobId]) expect((await call(`/api/jobs/${id}/cancel`, { method: 'POST' })).status).toBe(200)
  })
})

describe('the size cap (MAX_GENERATED_ASSET_BYTES)', () => {
  it('a file over the cap fails the job with the public asset_too_large error, and nothing is stored', async () => {
    await api.idle()
    const before = await generated.list('')
    const assetMarkers = async () => (await store.list(keys.expiryPrefix)).keys.filter((key) => key.includes('/asset~'))
    const markersBefore = await assetMarkers()
    process.env.MAX_GENERATED_ASSET_BYTES = '1000'
    try {
      const res = await submit({ kind: 'render', input: { width: 256, height: 256, maxIterations: 100 }, sourceTaskId: 'task:big' })
      const { jobId } = await res.json()
      const { events, feed } = await follow(jobId)
      expect(feed.status).toBe('failed')
      expect(events.some((e) => e.type === 'asset_created')).toBe(false)
      const error = events.at(-1)!
      expect(error.type).toBe('error')
      expect(error.data.error.code).toBe('asset_too_large')
      expect(error.data.error.message).toMatch(/over the limit of 1000 bytes/)
      const status = await (await call(`/api/jobs/${jobId}`)).json()
      expect(status).toMatchObject({ status: 'failed', error: { code: 'asset_too_large' }, assets: [] })
      await api.idle()
      expect(await generated.list('')).toEqual(before)
      expect(await assetMarkers()).toEqual(markersBefore)
      expect(await (await call(`/api/jobs/${jobId}/assets`)).json()).toEqual({ jobId, assets: [] })
    } finally {
      delete process.env.MAX_GENERATED_ASSET_BYTES
    }
  })
})

describe('bad input to the asset routes answers 4xx with the error envelope and writes nothing', () => {
  const validShape = `asset_${'0'.repeat(8)}${'b'.repeat(32)}`
  const cases: [string, () => Promise<Response>, number, string][] = [
    ['list without sourceTaskId', () => call('/api/assets'), 400, 'invalid_request'],
    ['list with an empty sourceTaskId', () => call('/api/assets?sourceTaskId='), 400, 'invalid_request'],
    ['list with a path as sourceTaskId', () => call('/api/assets?sourceTaskId=../../etc'), 400, 'invalid_request'],
    ['list with a sourceTaskId too long', () => call(`/api/assets?sourceTaskId=${'a'.repeat(129)}`), 400, 'invalid_request'],
    ['list without a key', () => call('/api/assets?sourceTaskId=task:42', { key: null }), 401, 'unauthorized'],
    ['list with a wrong method', () => call('/api/assets?sourceTaskId=task:42', { method: 'DELETE' }), 405, 'method_not_allowed'],
    ['download of a junk id', () => call('/api/assets/not-an-id'), 404, 'not_found'],
    ['download of a traversal', () => call('/api/assets/..%2F..%2Fetc'), 404, 'not_found'],
    ['download of a missing asset', () => call(`/api/assets/${validShape}`), 404, 'not_found'],
    ['download without a key', () => call(`/api/assets/${validShape}`, { key: null }), 401, 'unauthorized'],
    ['download with a wrong method', () => call(`/api/assets/${validShape}`, { method: 'POST', json: {} }), 405, 'method_not_allowed'],
    ['job listing of a junk id', () => call('/api/jobs/junk/assets'), 404, 'not_found'],
    ['job listing of a missing job', () => call(`/api/jobs/job_${'0'.repeat(8)}${'a'.repeat(32)}/assets`), 404, 'not_found'],
    ['job listing without a key', () => call('/api/jobs/junk/assets', { key: null }), 401, 'unauthorized'],
    ['render too wide', () => submit({ kind: 'render', input: { width: 4097, height: 10, maxIterations: 10 } }), 400, 'invalid_request'],
    ['render without maxIterations', () => submit({ kind: 'render', input: { width: 10, height: 10 } }), 400, 'invalid_request'],
    ['render with zoom 0', () => submit({ kind: 'render', input: { width: 10, height: 10, maxIterations: 10, zoom: 0 } }), 400, 'invalid_request'],
    ['render with a path as canvas', () => submit({ kind: 'render', input: { width: 10, height: 10, maxIterations: 10, canvas: '../x' } }), 400, 'invalid_request'],
  ]
  it.each(cases)('%s', async (_name, send, status, code) => {
    await api.idle()
    const before = await everything()
    const res = await send()
    expect(res.status).toBe(status)
    expect((await res.json()).error).toMatchObject({ code, message: expect.any(String) })
    expect(await everything()).toEqual(before)
  })
})

describe('lifecycle (domain level, real Blobs server, a clock the test moves)', () => {
  let storeNo = 0
  async function setup(kinds: JobKind<any, any>[] = []) {
    const clock = manualClock()
    const n = ++storeNo
    const deps = testDeps(api.blobs.port(`assets-life-${n}`), {
      clock,
      kinds,
      assets: api.blobs.assetPort(`assets-life-files-${n}`),
      settings: { heartbeatIntervalMs: 3600_000, heartbeatTimeoutMs: 3600_000 },
    })
    await createAccount(deps.store, clock, 'acct', 100)
    return { deps, clock }
  }
  const renderJob = (deps: Deps, sourceTaskId = 'task-1') =>
    submitJob(deps, 'acct', { kind: 'render', input: { width: 40, height: 30, maxIterations: 50 }, sourceTaskId }, null)
  const filesOf = async (deps: Deps) => (await deps.assets.list('')).sort()
  const minutes = 60_000
  const hours = 3600_000

  it('the reaper deletes the files of a failed job (orphans) at its next run, with their index entries', async () => {
    const paintThenFail = defineJob({
      kind: 'paint_then_fail',
      input: z.object({}),
      async run({ saveAsset }) {
        await saveAsset({ filename: 'partial.txt', contentType: 'text/plain', data: new TextEncoder().encode('half done') })
        throw new JobFailure('paint_failed', 'The paint ran out.')
      },
    })
    const { deps, clock } = await setup([paintThenFail])
    const { body } = await submitJob(deps, 'acct', { kind: 'paint_then_fail', input: {}, sourceTaskId: 'task-9' }, null)
    expect(await runJob(deps, body.jobId)).toBe('failed')
    const { state } = (await readState(deps.store, body.jobId))!
    expect(state.assets).toHaveLength(1)
    const assetId = state.assets[0]!.assetId
    expect(await filesOf(deps)).toHaveLength(3) // the bytes, by job, by task
    clock.advance(1000)
    const report = await reap(deps)
    expect(report.assetsDeleted).toBe(1)
    expect(await filesOf(deps)).toEqual([])
    await expect(loadOwnedAsset(deps, 'acct', assetId)).rejects.toMatchObject({ status: 404 })
    // Its retention marker comes due later and finds nothing to do.
    clock.advance(200 * 3600_000)
    expect((await reap(deps)).assetsDeleted).toBe(0)
    expect((await deps.store.list(keys.expiryPrefix)).keys.filter((key) => key.includes('asset~'))).toEqual([])
  })

  it('a completed job keeps its file through the orphan check, and the reaper deletes it after ASSET_RETENTION', async () => {
    const { deps, clock } = await setup()
    const start = clock.now()
    const { body } = await renderJob(deps)
    expect(await runJob(deps, body.jobId)).toBe('complete')
    const assetId = (await readState(deps.store, body.jobId))!.state.assets[0]!.assetId
    clock.set(start + 30 * minutes) // the orphan check is due: the job completed listing the file
    expect((await reap(deps)).assetsDeleted).toBe(0)
    clock.set(start + 48 * hours) // past the job's own retention: the job record goes, the file stays
    await reap(deps)
    expect(await readState(deps.store, body.jobId)).toBeNull()
    expect((await loadOwnedAsset(deps, 'acct', assetId)).sourceTaskId).toBe('task-1')
    clock.set(start + 168 * hours - 1 * minutes)
    expect((await reap(deps)).assetsDeleted).toBe(0) // not yet
    clock.set(start + 168 * hours + 10 * minutes)
    expect((await reap(deps)).assetsDeleted).toBe(1)
    expect(await filesOf(deps)).toEqual([])
  })

  it('a file its job never listed (a crash between the writes) is deleted by the orphan check; while the job is live the check waits', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => (release = resolve))
    const paintThenWait = defineJob({
      kind: 'paint_then_wait',
      input: z.object({}),
      async run({ saveAsset }) {
        const asset = await saveAsset({ filename: 'kept.txt', contentType: 'text/plain', data: new Uint8Array([1]) })
        await gate
        return { assetId: asset.assetId }
      },
    })
    const { deps, clock } = await setup([paintThenWait])
    const { body } = await submitJob(deps, 'acct', { kind: 'paint_then_wait', input: {} }, null)
    const running = runJob(deps, body.jobId)
    for (let i = 0; i < 200 && (await readState(deps.store, body.jobId))?.state.assets.length !== 1; i++) await new Promise((r) => setTimeout(r, 10))
    // The crash: stored with its index, but the job's record of it never written.
    const lost = await saveJobAsset(deps, { jobId: body.jobId, account: 'acct', sourceTaskId: null }, { filename: 'lost.txt', contentType: 'text/plain', data: new Uint8Array([2]) }, async () => {
      throw new Error('worker died')
    }).catch(() => null)
    expect(lost).toBeNull()
    expect(await filesOf(deps)).toHaveLength(4)

    clock.advance(30 * minutes) // both checks due while the job still runs: asked again later
    expect((await reap(deps)).assetsDeleted).toBe(0)
    expect(await filesOf(deps)).toHaveLength(4)
    release()
    expect(await running).toBe('complete')
    clock.advance(30 * minutes)
    expect((await reap(deps)).assetsDeleted).toBe(1)
    const { state } = (await readState(deps.store, body.jobId))!
    expect(await filesOf(deps)).toEqual([`asset/${state.assets[0]!.assetId}`, `byjob/acct/${body.jobId}/${state.assets[0]!.assetId}`])
  })

  it('the cap is checked before anything is written: at the limit it stores, one byte over it fails', async () => {
    const assets = memoryAssetPort()
    const deps = testDeps(api.blobs.port(`assets-cap-${++storeNo}`), { assets, settings: { maxAssetBytes: 10 } })
    const owner = { jobId: `job_${'0'.repeat(8)}${'c'.repeat(32)}`, account: 'acct', sourceTaskId: null }
    const recorded: unknown[] = []
    const record = async (asset: unknown) => void recorded.push(asset)
    await saveJobAsset(deps, owner, { filename: 'ten.bin', contentType: 'application/octet-stream', data: new Uint8Array(10) }, record)
    const writes = (await deps.store.list('')).keys.length
    await expect(
      saveJobAsset(deps, owner, { filename: 'eleven.bin', contentType: 'application/octet-stream', data: new Uint8Array(11) }, record),
    ).rejects.toMatchObject({ name: 'JobFailure', code: 'asset_too_large' })
    expect(recorded).toHaveLength(1)
    expect(assets.keys()).toHaveLength(2)
    expect((await deps.store.list('')).keys).toHaveLength(writes)
    // A handler's bad filename or media type is a bug, not a client error.
    await expect(saveJobAsset(deps, owner, { filename: '../x', contentType: 'text/plain', data: new Uint8Array(1) }, record)).rejects.toThrow(TypeError)
    await expect(saveJobAsset(deps, owner, { filename: 'x', contentType: 'text/plain; x="\r\n"', data: new Uint8Array(1) }, record)).rejects.toThrow(TypeError)
  })
})
