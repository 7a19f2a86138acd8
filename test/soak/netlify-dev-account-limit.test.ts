/**
 * Soak (`npm run test:soak`, run by CI after `npm test`): ACCOUNT_MAX_RUNNING
 * through a real `netlify dev`, which needs a server of its own started with
 * the limit (the shared server of `npm test` runs every other suite without
 * one). With a limit of 1, a second job of the account waits `queued` with
 * `waitingFor: "account"` while the first runs, and the end of the first
 * starts it: the hand-off runs in the first job's background function and
 * calls the second's, with no dispatcher or reaper involved. Another account
 * is not held up. test/account-limit.test.ts and
 * test/account-limit-http.test.ts prove the rest at the handler level.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type NetlifyDev, STARTUP_TIMEOUT_MS, makeProjectRoot, newApiKey, registerKeys, removeRoot, secret, startNetlifyDev } from '../e2e/support.ts'

const LIMITED = 'limited'
const OTHER = 'unhurried'
const keys: Record<string, string> = { [LIMITED]: newApiKey(LIMITED), [OTHER]: newApiKey(OTHER) }
let root: string
let dev: NetlifyDev

beforeAll(async () => {
  root = await makeProjectRoot()
  await registerKeys(root, [
    { apiKey: keys[LIMITED]!, account: LIMITED, credits: 1000 },
    { apiKey: keys[OTHER]!, account: OTHER, credits: 1000 },
  ])
  dev = await startNetlifyDev(root, { JOBS_SIGNING_SECRET: secret(), ADMIN_TOKEN: secret(), ACCOUNT_MAX_RUNNING: '1' })
}, STARTUP_TIMEOUT_MS + 30_000)

afterAll(async () => {
  await dev?.stop()
  if (root) await removeRoot(root)
}, 60_000)

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => console.error(`--- netlify dev output (tail) ---\n${dev.output().slice(-6000)}`))
})

async function api(account: string, path: string, body?: unknown) {
  const res = await fetch(`${dev.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${keys[account]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  })
  const text = await res.text()
  return { status: res.status, text, body: text ? JSON.parse(text) : null }
}

/** Distinct sentences of about `chars` characters: a summarize job that runs for a few seconds. */
const textOf = (label: string, chars: number) =>
  Array.from({ length: Math.ceil(chars / 60) }, (_, i) => `The ${label} document says thing ${i + 1} about its account.`).join(' ').slice(0, chars)

const summarize = (account: string, label: string, chars: number) =>
  api(account, '/api/jobs', { kind: 'summarize', input: { text: textOf(label, chars), windowChars: 500 } })

/** Follows a job's feed with long-polls until it is done; its final status. */
async function follow(account: string, jobId: string) {
  let after = 0
  for (;;) {
    const feed = await api(account, `/api/jobs/${jobId}/events?after=${after}&wait=20`)
    expect(feed.status).toBe(200)
    after = feed.body.next
    if (feed.body.done) return (await api(account, `/api/jobs/${jobId}`)).body
  }
}

describe('netlify dev with ACCOUNT_MAX_RUNNING=1', () => {
  it('queues the account\'s second job until the first ends, then starts it; another account runs beside them', async () => {
    const first = await summarize(LIMITED, 'first', 200_000)
    expect(first.status, first.text).toBe(202)
    const second = await summarize(LIMITED, 'second', 3_000)
    expect(second.status, second.text).toBe(202)
    expect(second.body).toMatchObject({ status: 'queued', queue: { position: 1, ahead: null, waitingFor: 'account' } })
    const other = await summarize(OTHER, 'other', 3_000)
    expect(other.status, other.text).toBe(202)
    expect(other.body.queue).toBeUndefined()

    const [firstDone, secondDone, otherDone] = [await follow(LIMITED, first.body.jobId), await follow(LIMITED, second.body.jobId), await follow(OTHER, other.body.jobId)]
    for (const done of [firstDone, secondDone, otherDone]) expect(done.status).toBe('complete')
    // One at a time for the limited account.
    expect(Date.parse(secondDone.startedAt)).toBeGreaterThanOrEqual(Date.parse(firstDone.finishedAt))
  }, 180_000)
})
