/**
 * Opens the product's store for a script. By default the local sandbox that
 * `netlify dev` uses (`.netlify/blobs-serve`, site "unlinked"); with
 * NETLIFY_SITE_ID and NETLIFY_AUTH_TOKEN in the environment, the deployed
 * site's store: production's, or with CONTEXT=deploy-preview (or another
 * deploy context) the stores that context's functions use (netlify/app.ts).
 */
import { join } from 'node:path'
import { getStore } from '@netlify/blobs'
import { BlobsServer } from '@netlify/blobs/server'
import { netlifyBlobsPort } from '../lib/storage/netlify-blobs.ts'
import type { BlobPort } from '../lib/storage/port.ts'
import { STORE_NAME, storeNamesFor } from '../netlify/app.ts'

export const LOCAL_SITE_ID = 'unlinked'

export async function openStore(options: { localOnly?: boolean } = {}): Promise<{ store: BlobPort; where: string; close(): Promise<void> }> {
  const siteID = process.env.NETLIFY_SITE_ID
  const token = process.env.NETLIFY_AUTH_TOKEN
  if (siteID && token && !options.localOnly) {
    const name = storeNamesFor((process.env.CONTEXT ?? '').trim().toLowerCase()).jobs
    const store = getStore({ name, siteID, token, consistency: 'strong' })
    return { store: netlifyBlobsPort(store), where: `site ${siteID}, store ${name}`, close: async () => {} }
  }
  const token_ = `local-${Math.random().toString(36).slice(2)}`
  const server = new BlobsServer({ directory: join(process.cwd(), '.netlify', 'blobs-serve'), token: token_ })
  const { port } = await server.start()
  const url = `http://localhost:${port}`
  const store = getStore({ name: STORE_NAME, siteID: LOCAL_SITE_ID, token: token_, edgeURL: url, uncachedEdgeURL: url, consistency: 'strong' })
  return { store: netlifyBlobsPort(store), where: 'the local sandbox (.netlify/blobs-serve)', close: () => server.stop() }
}

/** `--name value` pairs from argv. */
export function flags(argv = process.argv.slice(2)): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (!arg.startsWith('--')) continue
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined]
    out[name] = inline ?? (argv[i + 1] && !argv[i + 1]!.startsWith('--') ? argv[++i]! : 'true')
  }
  return out
}
