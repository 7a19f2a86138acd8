/**
 * Support for the browser suite: the Chromium to drive, and where screenshots
 * go. The project root, its API key and `netlify dev` come from the
 * end-to-end suite's helpers (test/e2e/support.ts).
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { type Browser, chromium } from 'playwright-core'
import { REPO } from '../e2e/support.ts'

export const CHROMIUM = '/usr/bin/chromium'
export const SCREENSHOTS = join(REPO, 'test-results')

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
