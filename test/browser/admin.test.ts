/**
 * The operator console in a real Chromium against the shared real `netlify dev`
 * (test/e2e/shared.ts): list and filters, the 24 h summary, a job's timeline and
 * both error forms, cancel, grant once on a double click, and the page at phone
 * width (375 px): nothing wider than the screen, job ids never squeezed to a few
 * characters a line. Other suites use the same server, so the list is read
 * filtered to this suite's account, and the summary of the whole site is
 * checked against the summary route read around it. Screenshots in test-results/.
 */
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type SharedDevInfo, sharedNetlifyDev } from '../e2e/shared.ts'
import { newApiKey, registerKeys } from '../e2e/support.ts'
import { SCREENSHOTS, launchChromium } from './support.ts'

/** This suite's jobs are all in console-a; console-b is granted credits. */
const ACCOUNT = 'console-a'
const KEY_A = newApiKey(ACCOUNT)
const KEY_B = newApiKey('console-b')
let dev: SharedDevInfo | undefined
let browser: Browser | undefined
let context: BrowserContext
const errors: string[] = []
let completed = ''
let failedJob = ''
let reserved = ''

const prose = (tag: string, sentences: number) =>
  Array.from({ length: sentences }, (_, i) => `The ${tag} report ${i} says durable jobs keep their state in blobs and survive restarts of the worker.`).join(' ')

async function api(path: string, init: { key?: string; method?: string; json?: unknown } = {}) {
  const res = await fetch(`${dev!.url}${path}`, {
    method: init.method ?? (init.json ? 'POST' : 'GET'),
    headers: { authorization: `Bearer ${init.key ?? KEY_A}`, ...(init.json ? { 'content-type': 'application/json' } : {}) },
    ...(init.json ? { body: JSON.stringify(init.json) } : {}),
  })
  return { status: res.status, body: await res.json() }
}

async function finish(jobId: string, key = KEY_A) {
  for (let after = 0, i = 0; i < 60; i++) {
    const feed = (await api(`/api/jobs/${jobId}/events?after=${after}&wait=10`, { key })).body
    after = feed.next
    if (feed.done) return feed.status as string
  }
  throw new Error(`${jobId} never finished`)
}

beforeAll(async () => {
  browser = await launchChromium()
  dev = await sharedNetlifyDev()
  await registerKeys(dev.root, [
    { apiKey: KEY_A, account: ACCOUNT, credits: 100 },
    { apiKey: KEY_B, account: 'console-b', credits: 100 },
  ])
  completed = (await api('/api/jobs', { json: { kind: 'summarize', input: { text: prose('alpha', 40) } } })).body.jobId
  // The `failing` test kind (listed by the shared server): a failed job with a public error code and internal detail.
  failedJob = (await api('/api/jobs', { json: { kind: 'failing', input: { public: true } } })).body.jobId
  reserved = (await api('/api/jobs', { json: { kind: 'summarize', clientJobId: 'upload-7', input: { text: prose('beta', 40) } } })).body.jobId
  expect(await finish(completed)).toBe('complete')
  expect(await finish(failedJob)).toBe('failed')
  expect(await finish(reserved)).toBe('complete')
  context = await browser.newContext({ viewport: { width: 1100, height: 900 }, reducedMotion: 'reduce' })
  // Every console load is several function calls through the shared server, which other suites keep busy.
  context.setDefaultTimeout(60_000)
}, 240_000)

afterAll(async () => {
  await browser?.close()
})

/** The summary route's answer, as the console reads it: what a page may show of it. */
async function summaryOfSite() {
  const res = await fetch(`${dev!.url}/api/admin/summary`, { headers: { authorization: `Bearer ${dev!.adminToken}` } })
  expect(res.status).toBe(200)
  const { counts, failures, durations } = (await res.json()) as {
    counts: Record<string, number>
    failures: { code: string; count: number }[]
    durations: { kind: string }[]
  }
  return { complete: counts.complete ?? 0, failed: counts.failed ?? 0, failures: new Map(failures.map(({ code, count }) => [code, count])), kinds: durations.map(({ kind }) => kind) }
}

/** The console, loaded with this suite's account in its account filter. */
async function openConsole(target: BrowserContext = context, account = ACCOUNT) {
  const page = await target.newPage()
  page.on('pageerror', (error) => errors.push(`pageerror: ${error.message}`))
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(`console: ${message.text()}`)
  })
  await page.goto(`${dev!.url}/admin`)
  await page.fill('#admin-token', dev!.adminToken)
  await page.fill('#account-filter', account)
  await page.click('#load')
  await page.waitForSelector('#section-jobs ~ .table-wrap tbody tr')
  return page
}

const rows = (page: Page) => page.$$eval('#section-jobs ~ .table-wrap tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''))
const shot = (name: string, page: Page) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })

describe('operator console', { timeout: 120_000 }, () => {
  it('lists jobs, filters by status, kind and account, and shows the 24 h summary', async () => {
    // The summary is the whole site's, which other suites change as their jobs end, and only grows:
    // the page must show at least what the summary route said before it loaded, at most what it said after.
    const before = await summaryOfSite()
    const page = await openConsole()
    await page.waitForSelector('#summary-title')
    const after = await summaryOfSite()
    const summary = (await page.textContent('#summary')) ?? ''
    expect(summary).toMatch(/Last 24 hours/)
    const shown = {
      complete: Number(/Complete\s*(\d+)/.exec(summary)?.[1]),
      failed: Number(/Failed\s*(\d+)/.exec(summary)?.[1]),
      failures: new Map(await page.$$eval('#summary table.failures tbody tr', (trs) => trs.map((tr) => [tr.children[0]?.textContent ?? '', Number(tr.children[1]?.textContent)] as const))),
      kinds: await page.$$eval('#summary table.durations tbody tr', (trs) => trs.map((tr) => tr.firstElementChild?.textContent ?? '')),
    }
    for (const field of ['complete', 'failed'] as const) {
      expect(shown[field], field).toBeGreaterThanOrEqual(before[field])
      expect(shown[field], field).toBeLessThanOrEqual(after[field])
    }
    for (const [code, count] of before.failures) expect(shown.failures.get(code), code).toBeGreaterThanOrEqual(count)
    for (const [code, count] of shown.failures) expect(count, code).toBeLessThanOrEqual(after.failures.get(code) ?? 0)
    expect(shown.kinds).toEqual(expect.arrayContaining(before.kinds))
    expect(after.kinds).toEqual(expect.arrayContaining(shown.kinds))
    // This suite's jobs are in it.
    expect(shown.complete).toBeGreaterThanOrEqual(2)
    expect(shown.failures.get('bad_document')).toBeGreaterThanOrEqual(1)
    expect(shown.kinds).toEqual(expect.arrayContaining(['failing', 'summarize']))

    const all = await rows(page)
    expect(all.length).toBe(3)
    expect(all[0]).toContain(reserved) // newest first
    expect(all.some((row) => row.includes(failedJob) && row.includes('bad_document'))).toBe(true)

    await page.selectOption('#status-filter', 'failed')
    await page.click('#load')
    await page.waitForFunction(() => document.querySelectorAll('#section-jobs ~ .table-wrap tbody tr').length === 1)
    expect((await rows(page))[0]).toContain(failedJob)
    expect(await page.textContent('#jobs-note')).toMatch(/1 matching of the last \d+ jobs looked at/)

    await page.selectOption('#status-filter', '')
    await page.fill('#kind-filter', 'summarize')
    await page.click('#load')
    await page.waitForFunction(() => document.querySelectorAll('#section-jobs ~ .table-wrap tbody tr').length === 2)
    expect((await rows(page)).every((row) => row.includes('summarize') && row.includes(ACCOUNT))).toBe(true)
    await shot('admin-console', page)
    await page.close()
  })

  it('opens a job: its whole timeline, both error forms, lock and charge', async () => {
    const page = await openConsole()
    await page.click(`button.job-link:has-text("${completed}")`)
    await page.waitForSelector('#job-detail:not([hidden]) #timeline li')
    const types = await page.$$eval('#timeline li', (lis) => lis.map((li) => (li as HTMLElement).dataset.type))
    expect(types[0]).toBe('started')
    expect(types.at(-1)).toBe('done')
    const seqs = await page.$$eval('#timeline li', (lis) => lis.map((li) => Number((li as HTMLElement).dataset.seq)))
    expect(seqs).toEqual(seqs.map((_, i) => i + 1))
    expect(await page.textContent('#job-detail .facts .status')).toBe('complete')
    const detail = (await page.textContent('#job-detail')) ?? ''
    expect(detail).toMatch(/charge\s*-1/)
    expect(detail).toMatch(/released/)
    expect(await page.$('#cancel-job')).toBeNull()

    await page.click(`button.job-link:has-text("${failedJob}")`)
    await page.waitForFunction((id) => document.querySelector('#detail-title')?.textContent?.includes(id), failedJob)
    const errors = (await page.textContent('#section-errors ~ .facts')) ?? ''
    expect(errors).toMatch(/bad_document/)
    expect(errors).toMatch(/db\.internal:5432/) // the internal form, for operators only
    await page.close()
  })

  it('cancels a running job from its detail', async () => {
    // The `ticker` test kind (listed by the shared server): it runs for minutes but mostly sleeps, where a long
    // summarize would keep netlify dev's CPU busy until the cancel lands.
    const long = (await api('/api/jobs', { json: { kind: 'ticker', input: { count: 1000, meanMs: 200 } } })).body.jobId
    // Running once its first event (`started`) is in the feed: a long-poll, not a status poll (each call through netlify dev costs ~0.5 s of CPU).
    for (let i = 0; i < 10 && (await api(`/api/jobs/${long}/events?after=0&wait=10`)).body.events.length === 0; i++);
    expect((await api(`/api/jobs/${long}`)).body.status).toBe('running')
    const page = await openConsole()
    await page.click(`button.job-link:has-text("${long}")`)
    await page.waitForSelector('#cancel-job')
    await page.click('#cancel-job')
    await page.waitForSelector('#detail-note')
    expect(await page.textContent('#detail-note')).toMatch(/Cancel(ed| requested)/)
    expect(await finish(long)).toBe('canceled')
    await page.close()
  })

  it('grants credits once on a double click', async () => {
    const before = (await api('/api/account', { key: KEY_B })).body.balance as number
    const page = await openConsole()
    await page.click('#section-accounts ~ .table-wrap tr:has-text("console-b") button')
    await page.fill('#grant-amount', '5')
    await page.fill('#grant-reason', 'support ticket 12')
    await page.dblclick('#grant')
    await page.waitForFunction(() => /Granted|Already granted/.test(document.getElementById('grant-result')?.textContent ?? ''))
    await new Promise((r) => setTimeout(r, 1000)) // the second click's request lands too
    const after = (await api('/api/account', { key: KEY_B })).body
    expect(after.balance).toBe(before + 5)
    expect(after.ledger.filter((entry: { data: { reason: string } }) => entry.data.reason === 'support ticket 12')).toHaveLength(1)
    await page.close()
  })

  it('at 375 px: nothing is wider than the screen and a job id is never squeezed to a few characters a line', async () => {
    const phone = await browser!.newContext({ viewport: { width: 375, height: 800 }, reducedMotion: 'reduce', isMobile: true })
    phone.setDefaultTimeout(60_000)
    const page = await openConsole(phone)
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
    const idBoxes = () =>
      page.$$eval('code.job-id', (codes) => codes.filter((c) => c.getClientRects().length > 0).map((c) => ({ width: c.getBoundingClientRect().width, lines: c.getClientRects().length, chars: (c.textContent ?? '').length })))
    expect(await overflow()).toBeLessThanOrEqual(0)

    await page.click(`button.job-link:has-text("${reserved}")`) // a job with a reservation (a table once overflowed here)
    await page.waitForSelector('#job-detail:not([hidden]) #timeline li')
    expect(await overflow()).toBeLessThanOrEqual(0)
    const boxes = await idBoxes()
    expect(boxes.length).toBeGreaterThan(3)
    for (const box of boxes) {
      // 47 characters: at least ~15 per line, so three lines at most.
      expect(box.width).toBeGreaterThanOrEqual(150)
      expect(box.lines).toBeLessThanOrEqual(3)
    }
    const wide = await page.$$eval('#main *', (nodes) => nodes.filter((n) => n.getBoundingClientRect().right > window.innerWidth + 1).map((n) => n.tagName + '.' + n.className))
    expect(wide).toEqual([])
    await shot('admin-phone', page)
    await phone.close()
  })

  it('no script errors', () => {
    expect(errors).toEqual([])
  })
})
