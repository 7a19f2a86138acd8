/**
 * Assets in a real Chromium. A page served from another origin (its own
 * port) shows a job's rendered PNG through a plain `<img src>` with the link
 * from the job's status, no header and no script involved; an expired and a
 * tampered link do not load. And the bundled client's `downloadAsset` fetches
 * a file of several parts in ranges and checks its sha256 in the browser (the
 * page's server passes /api to the functions, so that page is same-origin).
 * The API is the real function modules over HTTP on a real local Blobs server
 * (no `netlify dev` needed).
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { type Server, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assetLinks } from '../../lib/assets/links.ts'
import { writeParts } from '../../lib/assets/parts.ts'
import type { AssetRecord } from '../../lib/assets/record.ts'
import { randomIds } from '../../lib/core/ids.ts'
import { buildClient } from '../../scripts/build-client.ts'
import { purposeKey } from '../../lib/core/signing.ts'
import { testApi } from '../support/api.ts'
import { SCREENSHOTS, launchChromium } from './support.ts'

const api = testApi({ accounts: { 'img-a': 100 } })
let browser: Browser | undefined
let page: Server | undefined
let pageUrl = ''
let html = ''
let clientJs = ''

beforeAll(async () => {
  browser = await launchChromium()
  await api.start()
  const built = await mkdtemp(join(tmpdir(), 'client-'))
  await buildClient({ outdir: built, env: {} })
  clientJs = await readFile(join(built, 'client.js'), 'utf8')
  await rm(built, { recursive: true, force: true })
  page = createServer(async (req, res) => {
    if (req.url === '/client.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(clientJs)
    if (!req.url?.startsWith('/api/')) return res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html)
    // Same origin for the page: /api goes on to the functions as it is, Range and all.
    const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => name !== 'host').map(([name, value]) => [name, String(value)]))
    const answer = await fetch(`${api.url}${req.url}`, { headers })
    res.writeHead(answer.status, Object.fromEntries(answer.headers))
    res.end(Buffer.from(await answer.arrayBuffer()))
  })
  await new Promise<void>((resolve) => page!.listen(0, '127.0.0.1', resolve))
  pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/`
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await new Promise((resolve) => page?.close(resolve))
  await api.stop()
})

describe('assets in Chromium', () => {
  it('the signed link from the status loads cross-origin with no header; expired and tampered links do not', async () => {
    const submitted = await api.call('/api/jobs', { method: 'POST', json: { kind: 'render', input: { width: 160, height: 100, maxIterations: 80 } } })
    expect(submitted.status).toBe(202)
    const { jobId } = await submitted.json()
    await api.follow(jobId)
    const status = await (await api.call(`/api/jobs/${jobId}`)).json()
    const { assetId, url } = status.assets[0] as { assetId: string; url: string }
    expect(url).toMatch(/\?exp=\d+&sig=/)

    const key = purposeKey(api.signingSecret, 'asset-link')
    const expired = assetLinks(key, 'img-a', Date.now() - 2 * 3600_000).link(assetId)
    const sig = new URL(url, api.url).searchParams.get('sig')!
    const tampered = url.replace(`sig=${sig}`, `sig=${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`)
    const img = (id: string, src: string) => `<img id="${id}" src="${api.url}${src}" alt="${id}">`
    html = `<!doctype html><title>assets</title>${img('signed', url)}${img('expired', expired)}${img('tampered', tampered)}${img('plain', `/api/assets/${assetId}`)}`

    const context = await browser!.newContext()
    const tab = await context.newPage()
    await tab.goto(pageUrl)
    await tab.waitForFunction(() => [...document.images].every((image) => image.complete))
    const sizes = await tab.evaluate(() => Object.fromEntries([...document.images].map((image) => [image.id, [image.naturalWidth, image.naturalHeight]])))
    await tab.screenshot({ path: join(SCREENSHOTS, 'asset-links.png') })
    await context.close()

    expect(sizes).toEqual({ signed: [160, 100], expired: [0, 0], tampered: [0, 0], plain: [0, 0] })
    // What the browser sent: no Authorization anywhere; the answers behind each image.
    const seen = api.responses.filter((r) => r.route === 'asset')
    expect(seen.every((r) => r.authorization === null)).toBe(true)
    expect(seen.map((r) => r.status).sort()).toEqual([200, 401, 401, 404])
  })

  it('the bundled client downloads a file of several parts in ranges and checks its sha256', async () => {
    const data = randomBytes(300_000)
    const now = Date.now()
    const record: AssetRecord = {
      assetId: randomIds('asset'),
      account: 'img-a',
      jobId: randomIds('job'),
      sourceTaskId: null,
      filename: 'data.bin',
      contentType: 'application/octet-stream',
      bytes: data.byteLength,
      sha256: createHash('sha256').update(data).digest('hex'),
      createdAt: now,
      expiresAt: now + 3600_000,
      partBytes: 64 * 1024,
    }
    await writeParts(api.generated, record, data, record)
    html = '<!doctype html><title>download</title>'
    const context = await browser!.newContext()
    const tab = await context.newPage()
    await tab.goto(pageUrl)
    const before = api.responses.length
    // A string, so the test runner leaves the page's own `import()` alone.
    const result = await tab.evaluate(`(async () => {
      const { createClient } = await import('/client.js')
      const client = createClient({ apiKey: ${JSON.stringify(api.key('img-a'))} })
      const blob = await client.downloadAsset(${JSON.stringify(record.assetId)}, { partBytes: 100000 })
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()))
      return { size: blob.size, type: blob.type, sha256: [...digest].map((b) => b.toString(16).padStart(2, '0')).join('') }
    })()`)
    await context.close()
    expect(result).toEqual({ size: data.byteLength, type: 'application/octet-stream', sha256: record.sha256 })
    const seen = api.responses.slice(before).filter((r) => r.route === 'asset')
    expect(seen.map((r) => r.status)).toEqual([206, 206, 206]) // 300 000 bytes in parts of 100 000
  })
})
