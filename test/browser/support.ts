/**
 * Support for the browser suite: the Chromium to drive, and where screenshots
 * go. The project root, its API key and `netlify dev` come from the
 * end-to-end suite's helpers (test/e2e/support.ts).
 */
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
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

/**
 * Adds the `greet` kind (greet-kind.ts) to a copied project the way the README
 * says: its file in lib/kinds, listed in lib/kinds/index.ts. public/ is not touched.
 */
export async function addKind(projectRoot: string) {
  const source = await readFile(new URL('./greet-kind.ts', import.meta.url), 'utf8')
  await writeFile(join(projectRoot, 'lib', 'kinds', 'greet.ts'), source.replace("'../../lib/kinds/define.ts'", "'./define.ts'"))
  const index = join(projectRoot, 'lib', 'kinds', 'index.ts')
  const kinds = await readFile(index, 'utf8')
  if (!kinds.includes('[summarize, render]')) throw new Error('lib/kinds/index.ts changed: update addKind')
  await writeFile(index, `${kinds.replace('[summarize, render]', '[summarize, render, greet]')}import { greet } from './greet.ts'\n`)
}

