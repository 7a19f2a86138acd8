/**
 * Support for the browser suite: the Chromium to drive, and where screenshots
 * go. The project root, its API key and `netlify dev` come from the
 * end-to-end suite's helpers (test/e2e/support.ts). One Chromium serves every
 * suite (launched by test/e2e/global-setup.ts); each suite connects to it and
 * makes its own contexts.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type Browser, chromium } from 'playwright-core'
import { sharedChromiumEndpoint } from '../e2e/shared.ts'

export { CHROMIUM, SCREENSHOTS } from './chromium.ts'

/**
 * The shared Chromium, connected for this suite: `close()` closes the suite's
 * contexts and disconnects. Fails (never skips) with how to install Chromium
 * when it is missing. A download's file is read with `createReadStream()`
 * (`path()` is not available through a connection).
 */
export async function launchChromium(): Promise<Browser> {
  return chromium.connect(await sharedChromiumEndpoint())
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
  const listed = kinds.replace(/(productionKinds[^=]*= \[[^\]]*)\]/, '$1, greet]')
  if (listed === kinds) throw new Error('lib/kinds/index.ts changed: update addKind')
  await writeFile(index, `${listed}import { greet } from './greet.ts'\n`)
}

