/**
 * Signed asset links in a real Chromium: a page served from another origin
 * (its own port) shows a job's rendered PNG through a plain `<img src>` with
 * the link from the job's status, no header and no script involved; an
 * expired and a tampered link do not load. The API is the real function
 * modules over HTTP on a real local Blobs server (no `netlify dev` needed).
 */
import { type Server, createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { assetLinks } from '../../lib/assets/links.ts'
import { purposeKey } from '../../lib/core/signing.ts'
import { testApi } from '../support/api.ts'
import { SCREENSHOTS, launchChromium } from './support.ts'

const api = testApi({ accounts: { 'img-a': 100 } })
let browser: Browser | undefined
let page: Server | undefined
let pageUrl = ''
let html = ''

beforeAll(async () => {
  browser = await launchChromium()
  await api.start()
  page = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html))
  await new Promise<void>((resolve) => page!.listen(0, '127.0.0.1', resolve))
  pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/`
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await new Promise((resolve) => page?.close(resolve))
  await api.stop()
})

describe('a rendered image through <img src>', () => {
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
})
