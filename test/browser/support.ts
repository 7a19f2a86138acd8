/**
 * Support for the browser suite: the Chromium to drive, and where screenshots
 * go. The project root, its API key and `netlify dev` come from the
 * end-to-end suite's helpers (test/e2e/support.ts). One Chromium serves every
 * suite (launched by test/e2e/global-setup.ts); each suite connects to it and
 * makes its own contexts.
 */
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
