/**
 * The demo page and the operator view in a real Chromium, against a real
 * `netlify dev` (temporary project root, local Blobs sandbox). Screenshots go
 * to test-results/. Needs /usr/bin/chromium: without it the suite fails and
 * says how to install it.
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildClient } from '../../scripts/build-client.ts'
import { type NetlifyDev, makeProjectRoot, newApiKey, registerKeys, removeRoot, secret, startNetlifyDev } from '../e2e/support.ts'
import { SCREENSHOTS, addKind, launchChromium } from './support.ts'

const ADMIN_TOKEN = `admin-${secret()}`
const API_KEY = newApiKey('browser')
let root: string
let dev: NetlifyDev | undefined
let browser: Browser | undefined
let context: BrowserContext
let page: Page
let completedJobId = ''
let renderJobId = ''
const errors: string[] = []

beforeAll(async () => {
  browser = await launchChromium() // first: a missing Chromium fails at once, with how to install it
  root = await makeProjectRoot()
  await addKind(root) // a kind the page has never heard of: its menu entry and form must come from the server
  await rm(join(root, 'public', 'dev-api-key.json'), { force: true }) // a developer's own key must not leak in
  await buildClient({ outdir: join(root, 'public'), env: {} })
  await registerKeys(root, [{ apiKey: API_KEY, account: 'browser', credits: 100 }])
  // As `npm run dev` does: the page gets tokens from /api/dev/token, minted with this key.
  dev = await startNetlifyDev(root, { JOBS_SIGNING_SECRET: secret(), ADMIN_TOKEN, DEV_TOKEN_API_KEY: API_KEY })
  context = await browser.newContext({ viewport: { width: 1100, height: 900 }, reducedMotion: 'reduce' })
  page = await context.newPage()
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`))
  page.on('console', (message) => {
    // "Failed to load resource" is the browser logging an error answer the page expects (401, 409, a missing dev key)
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(`console: ${message.text()}`)
  })
}, 180_000)

afterAll(async () => {
  await browser?.close()
  await dev?.stop()
  if (root) await removeRoot(root)
})

/** Full-page screenshots take seconds while the long sample is in the textarea: those shots show the viewport (the job). */
const shot = (name: string, target: Page = page, fullPage = true) => target.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage })
const text = async (selector: string, target: Page = page) => ((await target.textContent(selector)) ?? '').trim()
const status = () => text('#job-status')
const waitForStatus = async (value: string, timeout = 30_000) => {
  try {
    await page.waitForFunction((v) => document.getElementById('job-status')?.textContent === v, value, { timeout })
  } catch (error) {
    await shot(`failed-waiting-for-${value}`)
    throw new Error(`status never became "${value}": it is "${await status()}", error box: "${await text('#error')}", notice: "${await text('#notice')}"`, { cause: error })
  }
}

/** Waits until the page shows a job other than `previous`; returns its id. */
async function newJob(previous: string) {
  await page.waitForFunction((old) => /^job_/.test(document.getElementById('job-id')?.textContent ?? '') && document.getElementById('job-id')?.textContent !== old, previous, { timeout: 15_000 })
  return text('#job-id')
}

/** Records every value the progress bar takes, from now on. */
const recordProgress = () =>
  page.evaluate(() => {
    const bar = document.getElementById('progress') as HTMLProgressElement
    const values: number[] = ((window as unknown as { progressValues: number[] }).progressValues = [])
    new MutationObserver(() => values.push(bar.value)).observe(bar, { attributes: true, attributeFilter: ['value'] })
  })
const progressValues = () => page.evaluate(() => (window as unknown as { progressValues: number[] }).progressValues)

/** Waits until the rendered image has loaded; returns its natural size and src. */
async function renderedImage(target: Page = page) {
  await target.waitForFunction(() => {
    const img = document.querySelector<HTMLImageElement>('#result .rendered img')
    return img?.complete && img.naturalWidth > 0
  }, null, { timeout: 30_000 })
  return target.$eval('#result .rendered img', (img) => {
    const { naturalWidth, naturalHeight, src, alt } = img as HTMLImageElement
    return { naturalWidth, naturalHeight, src, alt }
  })
}

describe('demo page', { timeout: 150_000 }, () => {
  it('submits a summarize job from the keyboard, shows progress, each window as it lands, and the result', async () => {
    await page.goto(`${dev!.url}/`)
    expect(await page.title()).toContain('Durable jobs')
    expect(await page.inputValue('#api-key')).toBe('') // no dev key file in this project root
    await page.fill('#api-key', API_KEY)
    await page.selectOption('#sample-size', 'short')
    await page.click('#load-sample')
    const sample = await page.inputValue('#text')
    expect(sample.split(/\s+/).length).toBeGreaterThan(2500)
    expect(await text('#text-count')).toMatch(/characters/)
    await recordProgress()

    await page.focus('#submit')
    await page.keyboard.press('Enter')
    await page.waitForSelector('#result:not([hidden])', { timeout: 30_000 })

    expect(await status()).toBe('complete')
    expect(await page.$eval('#progress', (bar) => (bar as HTMLProgressElement).value)).toBe(100)
    const values = await progressValues()
    expect(values.some((value) => value > 0 && value < 100)).toBe(true) // it moved through the windows
    expect(values.at(-1)).toBe(100)
    const windows = await page.$$eval('#events li.event-window_complete', (items) => items.map((item) => item.textContent ?? ''))
    expect(windows.length).toBeGreaterThan(3)
    expect(windows[0]).toMatch(/^#\d+ Window 1 of (\d+) done: /)
    expect(windows.length).toBe(Number(/of (\d+)/.exec(windows[0]!)![1]))
    expect(await page.getAttribute('#events', 'aria-live')).toBe('polite')
    expect(await text('#result .result-title')).not.toBe('')
    expect(await page.$$eval('#result .key-points li', (items) => items.length)).toBeGreaterThan(0)
    expect(await text('#notice')).toBe('The job is complete.')
    expect(await page.isDisabled('#cancel')).toBe(true)
    completedJobId = await text('#job-id')
    expect(completedJobId).toMatch(/^job_/)
    expect(page.url()).toContain(`#job=${completedJobId}`)
    await shot('demo-complete')
    expect(await text('#submit-status')).toBe('')
  })

  it('cancels a long job while it runs', async () => {
    await page.selectOption('#sample-size', 'long')
    await page.click('#load-sample')
    await page.fill('#window-chars', '500')
    await recordProgress()
    await page.click('#submit')
    const jobId = await newJob(completedJobId)
    expect(page.url()).toContain(`#job=${jobId}`)
    await page.waitForSelector('#events li.event-window_complete', { timeout: 30_000 })
    await waitForStatus('running')
    await page.waitForFunction(() => (document.getElementById('progress') as HTMLProgressElement).value > 0, null, { timeout: 30_000 })
    const moving = await page.$eval('#progress', (bar) => (bar as HTMLProgressElement).value)
    expect(moving).toBeGreaterThan(0)
    expect(moving).toBeLessThan(100)
    await shot('demo-running', page, false)

    await page.click('#cancel')
    await waitForStatus('canceled', 60_000)
    expect(await text('#notice')).toBe('The job was canceled.')
    const log = await page.$$eval('#events li', (items) => items.map((item) => item.className))
    expect(log.at(-1)).toBe('event event-canceled') // (after `cancel_requested`, which the worker writes itself if it saw the request first)
    expect(await page.$eval('#progress', (bar) => (bar as HTMLProgressElement).value)).toBeLessThan(95)
    expect(await page.isHidden('#result')).toBe(true)
    await shot('demo-canceled', page, false)
  })

  it('a double click on Submit joins the running job instead of failing', async () => {
    const canceledJobId = await text('#job-id')
    await page.dblclick('#submit') // the long text again: its last job was canceled, so the first click starts one
    const jobId = await newJob(canceledJobId)
    await page.waitForFunction(() => /Joined the running job/.test(document.getElementById('notice')?.textContent ?? ''), null, { timeout: 15_000 })
    expect(await text('#notice')).toContain(jobId)
    expect(await page.isHidden('#error')).toBe(true)
    await page.waitForSelector('#events li.event-window_complete', { timeout: 30_000 })
    await shot('demo-joined', page, false)
    await page.click('#cancel')
    await waitForStatus('canceled', 60_000)
  })

  it('shows the public message of an error answer', async () => {
    await page.fill('#api-key', newApiKey('browser')) // well-formed, never registered
    await page.click('#submit')
    await page.waitForSelector('#error:not([hidden])')
    expect(await text('#error')).toMatch(/Send a valid API key.*Check the API key\./)
    await page.fill('#api-key', API_KEY)
    await page.fill('#text', '')
    await page.click('#submit')
    expect(await text('#error')).toBe('Paste a text or load the sample first.')
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('text')
    await shot('demo-error')
  })

  it('renders the Mandelbrot set: progress, then the image through <img src> with its signed link (no header) and a Download PNG link', async () => {
    await page.selectOption('#kind', 'render')
    expect(await page.isHidden('fieldset[data-kind="summarize"]')).toBe(true)
    expect(await page.isVisible('fieldset[data-kind="render"]')).toBe(true)
    await page.fill('#render-width', '480')
    await page.fill('#render-height', '300')
    await page.fill('#render-max-iterations', '150')
    await recordProgress()
    await page.focus('#render-max-iterations')
    await page.keyboard.press('Enter') // implicit submission from a field
    renderJobId = await newJob(await text('#job-id'))
    const image = await renderedImage()
    expect(image.naturalWidth).toBe(480)
    expect(image.naturalHeight).toBe(300)
    expect(image.src).toMatch(new RegExp(`^${dev!.url}/api/assets/asset_[a-z0-9]+\\?exp=\\d+&sig=[A-Za-z0-9_-]{43}$`))
    expect(image.alt).toMatch(/Mandelbrot set, 480 × 300 pixels/)
    expect(await status()).toBe('complete')
    const values = await progressValues()
    expect(values.some((value) => value > 0 && value < 100)).toBe(true)
    expect(values.at(-1)).toBe(100)
    expect(await page.$$eval('#events li.event-asset_created', (items) => items.map((item) => item.textContent))).toEqual([
      expect.stringMatching(/Saved mandelbrot-480x300\.png \(\d/),
    ])
    expect(await page.isHidden('#error')).toBe(true)

    // the link downloads the same file under the asset's filename
    const link = page.locator('#result a[download]')
    expect(await link.textContent()).toBe('Download PNG')
    expect(new URL((await link.getAttribute('href'))!, dev!.url).href).toBe(image.src)
    const [download] = await Promise.all([page.waitForEvent('download'), link.focus().then(() => page.keyboard.press('Enter'))])
    expect(download.suggestedFilename()).toBe('mandelbrot-480x300.png')
    const png = Buffer.concat(await (await download.createReadStream()).toArray())
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([480, 300]) // IHDR width and height
    await shot('demo-render')

    // another render (into a named canvas) replaces the image with its own link
    await page.fill('#render-width', '240')
    await page.fill('#render-height', '150')
    await page.fill('#render-canvas', 'demo-canvas')
    await page.click('#submit')
    await newJob(renderJobId)
    await page.waitForFunction((old) => document.querySelector<HTMLImageElement>('#result .rendered img')?.src !== old, image.src, { timeout: 30_000 })
    expect((await renderedImage()).naturalWidth).toBe(240)
    expect(await page.locator('#result a[download]').getAttribute('download')).toBe('demo-canvas-240x150.png')
  })

  it('holds no key in local development: tokens from /api/dev/token resume the job named in the URL and submit new ones', async () => {
    const mobile = await browser!.newPage({ viewport: { width: 375, height: 800 } })
    await mobile.goto(`${dev!.url}/#job=${completedJobId}&kind=summarize`)
    await mobile.waitForSelector('#result:not([hidden])', { timeout: 30_000 })
    expect(await mobile.inputValue('#api-key')).toBe('')
    expect(await text('#key-hint', mobile)).toMatch(/^Local development: .*holds no API key/)
    expect(await text('#job-id', mobile)).toBe(completedJobId)
    expect(await text('#job-status', mobile)).toBe('complete')
    // readable at 375 px: nothing wider than the screen
    expect(await mobile.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375)
    await shot('demo-mobile', mobile)

    // a render job resumes too, and its image fits the screen
    await mobile.goto('about:blank')
    await mobile.goto(`${dev!.url}/#job=${renderJobId}&kind=render`)
    expect((await renderedImage(mobile)).naturalWidth).toBe(480)
    expect(await mobile.inputValue('#kind')).toBe('render')
    expect(await mobile.evaluate(() => document.querySelector('#result .rendered img')!.getBoundingClientRect().right)).toBeLessThanOrEqual(375)
    expect(await mobile.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375)
    await shot('demo-render-mobile', mobile)

    // a new job, submitted with a development token, watched with its own watch token
    const sent: string[] = []
    mobile.on('request', (request) => sent.push(request.headers().authorization ?? ''))
    await mobile.selectOption('#kind', 'summarize')
    await mobile.fill('#text', 'Tokens keep keys off the page. Each job has its own read-only token. The demo asks the dev route.')
    await mobile.click('#submit')
    await mobile.waitForFunction(
      (previous) => document.getElementById('job-id')?.textContent !== previous && document.getElementById('job-status')?.textContent === 'complete',
      renderJobId,
      { timeout: 60_000 },
    )
    expect(sent.filter((auth) => auth.startsWith('Bearer ')).length).toBeGreaterThan(0)
    expect(sent.filter((auth) => auth.startsWith('Bearer ') && !auth.startsWith('Bearer djt_'))).toEqual([])
    expect(await mobile.evaluate(() => Object.keys(sessionStorage).some((key) => key.startsWith('watch-token:')))).toBe(true)
    await mobile.close()
  })
})

describe('operator view', { timeout: 90_000 }, () => {
  it('asks for the admin token, keeps it in sessionStorage only, and lists jobs, locks and accounts', async () => {
    const admin = await context.newPage()
    await admin.goto(`${dev!.url}/admin`)
    expect(await admin.title()).toMatch(/operator view/i)
    await admin.fill('#admin-token', 'not-the-token-0123456789')
    await admin.click('#load')
    await admin.waitForSelector('#error:not([hidden])')
    expect(await text('#error', admin)).toMatch(/admin token was not accepted/)

    await admin.fill('#admin-token', ADMIN_TOKEN)
    await admin.click('#load')
    await admin.waitForSelector('#snapshot table')
    const rows = await admin.$$eval('#section-jobs ~ .table-wrap tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''))
    expect(rows.length).toBe(6) // complete, canceled, canceled (the one that was joined), two renders complete, one submitted with a development token
    expect(rows.some((row) => row.includes(completedJobId) && row.includes('complete') && row.includes('browser'))).toBe(true)
    expect(rows.filter((row) => row.includes('canceled')).length).toBeGreaterThanOrEqual(2)
    expect(rows.some((row) => row.includes(renderJobId) && row.includes('render') && row.includes('complete'))).toBe(true)
    expect(await text('#meta', admin)).toMatch(/Snapshot of .*jobs?/)
    const headings = await admin.$$eval('#snapshot h2', (hs) => hs.map((h) => h.textContent))
    expect(headings.slice(0, 2)).toEqual(['Jobs', 'Held locks'])
    expect(headings).toContain('Accounts') // an extra section, rendered generically
    expect(await admin.evaluate(() => sessionStorage.getItem('durable-jobs.adminToken'))).toBe(ADMIN_TOKEN)
    expect(await admin.evaluate(() => JSON.stringify(localStorage))).not.toContain(ADMIN_TOKEN)
    expect(await admin.content()).not.toContain(ADMIN_TOKEN.slice(6)) // not in the page, only in the field's value
    await shot('admin', admin)

    // a reload in the same tab loads again without asking
    await admin.reload()
    await admin.waitForSelector('#snapshot table')
    await admin.click('#forget')
    expect(await admin.evaluate(() => sessionStorage.getItem('durable-jobs.adminToken'))).toBeNull()
    await admin.close()
  })

  it('no script errors on any page', () => {
    expect(errors).toEqual([])
  })
})

describe('a kind added on the server', { timeout: 60_000 }, () => {
  it('appears in the menu with a form generated from its input schema, checked before it is sent, and runs', async () => {
    const errorsBefore = errors.length
    await page.goto(`${dev!.url}/`)
    await page.fill('#api-key', API_KEY)
    await page.waitForSelector('#kind option[value="greet"]', { state: 'attached' })
    expect(await page.$$eval('#kind option', (options) => options.map((o) => [o.getAttribute('value'), o.textContent]))).toEqual([
      ['summarize', 'Summarize a text'],
      ['render', 'Render the Mandelbrot set'],
      ['index', 'Index documents'],
      ['greet', 'Greet someone'],
    ])
    await page.selectOption('#kind', 'greet')
    expect(await page.isVisible('fieldset[data-kind="greet"]')).toBe(true)
    expect(await page.isHidden('fieldset[data-kind="summarize"]')).toBe(true)
    expect(await text('fieldset[data-kind="greet"] legend')).toBe('Greet someone')
    // each JSON Schema type gets its control, filled with the kind's example
    expect(await page.getAttribute('#greet-name', 'type')).toBe('text')
    expect(await page.getAttribute('#greet-name', 'maxlength')).toBe('40')
    expect(await page.inputValue('#greet-name')).toBe('Ada')
    expect(await page.$eval('#greet-times', (input: HTMLInputElement) => [input.type, input.min, input.max, input.step, input.value])).toEqual(['number', '1', '5', '1', '2'])
    expect(await text('label[for="greet-times"]')).toBe('How many times')
    expect(await page.getAttribute('#greet-shout', 'type')).toBe('checkbox')
    expect(await text('label[for="greet-shout"]')).toMatch(/Shout\s+\(optional\)/)
    expect(await page.$$eval('#greet-style option', (options) => options.map((o) => o.textContent))).toEqual(['plain', 'fancy'])

    // out of bounds: the page says so and sends nothing
    const jobBefore = await text('#job-id')
    await page.fill('#greet-times', '9')
    await page.click('#submit')
    await page.waitForSelector('#error:not([hidden])')
    expect(await text('#error')).toBe('How many times must be a whole number from 1 to 5.')
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('greet-times')
    expect(await text('#job-id')).toBe(jobBefore)

    await page.fill('#greet-times', '3')
    await page.check('#greet-shout')
    await page.selectOption('#greet-style', 'fancy')
    await page.click('#submit')
    await newJob(jobBefore)
    await waitForStatus('complete')
    expect(await text('#result .result-json')).toBe(JSON.stringify({ greeting: 'HELLO, ADA! HELLO, ADA! HELLO, ADA!' }, null, 2))
    await shot('demo-generated-kind')
    expect(errors.slice(errorsBefore)).toEqual([])

    // the OpenAPI document, through netlify dev, describes the new kind's input too
    const described = await page.evaluate(async () => {
      const document = await (await fetch('/api/openapi.json')).json()
      const variants = document.paths['/api/jobs'].post.requestBody.content['application/json'].schema.oneOf
      return { openapi: document.openapi, kinds: variants.map((v: { properties: { kind: { const: string } } }) => v.properties.kind.const) }
    })
    expect(described).toEqual({ openapi: '3.1.0', kinds: ['summarize', 'render', 'index', 'greet'] })
  })
})
