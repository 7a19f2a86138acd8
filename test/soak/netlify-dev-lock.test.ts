/**
 * Soak (`npm run test:soak`, run by CI after `npm test`): the lock proof
 * through the real `netlify dev` at full length, 50 rounds of 20 concurrent
 * submits of one document (E2E_LOCK_ROUNDS to change). `npm test` runs the
 * same proof for 1 round in test/e2e/lock-proof.test.ts.
 */
import { afterAll, beforeAll, describe, it, onTestFailed } from 'vitest'
import { type NetlifyDev, STARTUP_TIMEOUT_MS, makeProjectRoot, newApiKey, registerKeys, removeRoot, secret, startNetlifyDev } from '../e2e/support.ts'
import { type JobTimes, expectOneHolderPerRound, lockRounds } from '../e2e/lock-rounds.ts'

const key = newApiKey('soak')
let root: string
let dev: NetlifyDev | undefined

beforeAll(async () => {
  root = await makeProjectRoot()
  await registerKeys(root, [{ apiKey: key, account: 'soak', credits: 100_000 }])
  dev = await startNetlifyDev(root, { JOBS_SIGNING_SECRET: secret(), ADMIN_TOKEN: secret() })
}, STARTUP_TIMEOUT_MS + 30_000)

afterAll(async () => {
  await dev?.stop()
  if (root) await removeRoot(root)
}, 60_000)

/** A document of its own per round, in many small windows so its job runs while the round's requests arrive. */
const documentOf = (round: number) =>
  Array.from({ length: 120 }, (_, i) => `Soak round ${round} keeps one job per document, sentence ${i + 1} of many.`).join(' ')

describe('netlify dev, soak', () => {
  it('20 concurrent submits on one resource: never two jobs holding it at once, every 409 naming the holder, 50 rounds in a row', async () => {
    onTestFailed(() => console.error(`--- netlify dev output (tail) ---\n${dev?.output().slice(-6000)}`))
    await expectOneHolderPerRound(
      lockRounds(50),
      async (round) => {
        const res = await fetch(`${dev!.url}/api/jobs`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ kind: 'summarize', input: { text: documentOf(round), windowChars: 500 } }),
          signal: AbortSignal.timeout(60_000),
        })
        return { status: res.status, body: await res.json() }
      },
      async (jobId) => {
        const res = await fetch(`${dev!.url}/api/jobs/${jobId}`, { headers: { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(60_000) })
        return (await res.json()) as JobTimes
      },
    )
  }, 1_800_000)
})
