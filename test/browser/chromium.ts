/**
 * The system Chromium the browser suites drive, and where their screenshots go.
 * test/e2e/global-setup.ts launches it once, as a server every suite connects to
 * (test/browser/support.ts `launchChromium`).
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { type BrowserServer, chromium } from 'playwright-core'
import { REPO } from '../e2e/support.ts'

export const CHROMIUM = '/usr/bin/chromium'
export const SCREENSHOTS = join(REPO, 'test-results')

/** Launches the system Chromium as a server (the global setup does, once). */
export async function launchChromiumServer(): Promise<BrowserServer> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `The browser tests need Chromium at ${CHROMIUM}, and it is not installed. ` +
        'Install it with `apt-get update && apt-get install -y chromium` (as root); `.ci/run` does this in CI.',
    )
  }
  await mkdir(SCREENSHOTS, { recursive: true })
  return chromium.launchServer({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
}
