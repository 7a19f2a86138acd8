/**
 * Support for the browser suite. `netlify dev` itself is started with the
 * end-to-end suite's helpers (test/e2e/support.ts); this adds what the demo
 * page needs on top: an account with credits next to the API key in the
 * temporary project's local Blobs sandbox, and a Chromium to drive.
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { getStore } from '@netlify/blobs'
import { BlobsServer } from '@netlify/blobs/server'
import { type Browser, chromium } from 'playwright-core'
import { registerApiKey } from '../../lib/api-keys.ts'
import { systemClock } from '../../lib/clock.ts'
import { createAccount } from '../../lib/credits.ts'
import { netlifyBlobsPort } from '../../lib/storage/netlify-blobs.ts'
import { STORE_NAME } from '../../netlify/app.ts'
import { REPO, secret } from '../e2e/support.ts'

export const CHROMIUM = '/usr/bin/chromium'
export const SCREENSHOTS = join(REPO, 'test-results')

/** Registers `apiKey` for `account` and gives the account `credits`, in `<root>/.netlify/blobs-serve` (site "unlinked"). */
export async function seedSandbox(root: string, { apiKey, account, credits }: { apiKey: string; account: string; credits: number }) {
  const token = `browser-${secret()}`
  const server = new BlobsServer({ directory: join(root, '.netlify', 'blobs-serve'), token })
  const { port } = await server.start()
  try {
    const url = `http://localhost:${port}`
    const store = netlifyBlobsPort(getStore({ name: STORE_NAME, siteID: 'unlinked', token, edgeURL: url, uncachedEdgeURL: url, consistency: 'strong' }))
    await registerApiKey(store, systemClock, apiKey, account, 'browser test')
    await createAccount(store, systemClock, account, credits)
  } finally {
    await server.stop()
  }
}

/** Launches the system Chromium; fails (never skips) with how to install it when it is missing. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `The browser tests need Chromium at ${CHROMIUM}, and it is not installed. ` +
        'Install it with `apt-get update && apt-get install -y chromium` (as root); `.ci/run` does this in CI.',
    )
  }
  await mkdir(SCREENSHOTS, { recursive: true })
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
}
