/**
 * A suite's side of the shared Chromium and `netlify dev` (test/e2e/global-setup.ts
 * starts each the first time a suite asks; test/e2e/shared-server.ts says what
 * the server has). A new end-to-end suite starts from here:
 *
 *   const dev = await sharedNetlifyDev()                 // in beforeAll
 *   await registerKeys(dev.root, [{ apiKey, account }])  // its own account and key
 *
 * and starts a `netlify dev` of its own (startNetlifyDev) only for what the
 * shared one cannot give: other settings, other kinds, a server it stops.
 */
import { inject } from 'vitest'
import type { SharedDevInfo } from './shared-server.ts'

export type { SharedDevInfo }

async function ask<T>(path: string): Promise<T> {
  const res = await fetch(`${inject('e2eBroker')}${path}`)
  if (!res.ok) throw new Error(`shared ${path.slice(1)}: ${await res.text()}`)
  return (await res.json()) as T
}

export const sharedNetlifyDev = () => ask<SharedDevInfo>('/netlify-dev')

/** Everything the shared `netlify dev` printed so far (every suite's requests): for checks and failure messages. */
export const sharedNetlifyDevOutput = async () => (await ask<{ output: string }>('/netlify-dev/output')).output

/** The shared Chromium's endpoint, for `chromium.connect` (test/browser/support.ts). */
export const sharedChromiumEndpoint = async () => (await ask<{ wsEndpoint: string }>('/chromium')).wsEndpoint
