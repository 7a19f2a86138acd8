/**
 * The lock proof through the real `netlify dev` (the shared one, test/e2e/shared.ts):
 * 20 concurrent submits of one document, round after round; never two jobs
 * holding it at once, every 409 naming the holder. `npm test` runs 1 round,
 * `npm run test:soak` 50 (test/soak); E2E_LOCK_ROUNDS sets either. The
 * sandbox's conditional writes under 20 concurrent writers are checked in
 * `npm test` too, 20 trials of them (test/sandbox-fidelity.test.ts).
 */
import { beforeAll, describe, expect, it, onTestFailed } from 'vitest'
import { expectOneHolderPerRound, lockRounds } from './lock-rounds.ts'
import { type SharedDevInfo, sharedNetlifyDev, sharedNetlifyDevOutput } from './shared.ts'
import { STARTUP_TIMEOUT_MS, newApiKey, registerKeys } from './support.ts'

const key = newApiKey('e2e-lock')
let dev: SharedDevInfo

beforeAll(async () => {
  dev = await sharedNetlifyDev()
  await registerKeys(dev.root, [{ apiKey: key, account: 'e2e-lock', credits: 1000 }])
}, STARTUP_TIMEOUT_MS + 30_000)

async function api(path: string, body?: unknown) {
  const res = await fetch(`${dev.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    // A long-poll holds up to 20 s, plus the function's cold start on a loaded machine.
    signal: AbortSignal.timeout(60_000),
  })
  return { status: res.status, body: (await res.json()) as any }
}

/** Deterministic text of its own per round, in many small windows so its job runs while the round's requests arrive. */
const documentOf = (round: number) =>
  Array.from({ length: 120 }, (_, i) => `Lock round ${round} keeps one job per document, sentence ${i + 1} of many.`).join(' ')

/** Follows the feed with long-polls until the job's terminal event; its final status. */
async function finish(jobId: string) {
  for (let after = 0; ; ) {
    const feed = await api(`/api/jobs/${jobId}/events?after=${after}&wait=20`)
    expect(feed.status).toBe(200)
    after = feed.body.next
    if (feed.body.done) return feed.body.status as string
  }
}

describe('netlify dev, the lock', () => {
  it('20 concurrent submits on one resource: never two jobs holding it at once, every 409 naming the holder, round after round (50 rounds in npm run test:soak)', async () => {
    onTestFailed(async () => console.error(`--- netlify dev output (tail) ---\n${(await sharedNetlifyDevOutput()).slice(-6000)}`))
    const { holders } = await expectOneHolderPerRound(
      lockRounds(1),
      (round) => api('/api/jobs', { kind: 'summarize', input: { text: documentOf(round), windowChars: 500 } }),
      async (jobId) => (await api(`/api/jobs/${jobId}`)).body,
    )
    // Every round's job runs to its end: none is left holding its lock.
    for (const jobId of holders) expect(await finish(jobId)).toBe('complete')
  }, 900_000)
})
