/**
 * Builds the browser code into `public/` (ESM, minified, browser platform):
 * - `public/client.js` from `lib/client/index.ts`: the API client, for any page;
 * - `public/app.js` from `public/app.ts`: the demo page at `/`;
 * - `public/admin.js` from `public/admin.ts`: the operator view at `/admin`.
 *
 * In a Netlify build (`NETLIFY=true`, or `CONTEXT` set by `netlify build` /
 * `netlify deploy`) it also deletes `public/dev-api-key.json`, the local
 * development key that earlier versions of `npm run dev` wrote for the demo
 * page (it now mints tokens instead), so such a file is never part of a deploy.
 *
 * Run: `node scripts/build-client.ts`. Tests import `buildClient()`.
 */
import { rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)))

export const OUTPUTS = {
  'client.js': 'lib/client/index.ts',
  'app.js': 'public/app.ts',
  'admin.js': 'public/admin.ts',
} as const

/** Written next to the page by earlier versions of `npm run dev` (`public/dev-api-key.json`). */
export const DEV_KEY_NAME = 'dev-api-key.json'

/** Is this a Netlify build (CI or `netlify build`/`deploy`), where nothing local may be published? */
export const isNetlifyBuild = (env: NodeJS.ProcessEnv = process.env) => env.NETLIFY === 'true' || Boolean(env.CONTEXT)

/** Bundles every output into `outdir` (default `public/`). */
export async function buildClient({ outdir = join(ROOT, 'public'), env = process.env }: { outdir?: string; env?: NodeJS.ProcessEnv } = {}) {
  await Promise.all(
    Object.entries(OUTPUTS).map(([out, entry]) =>
      build({
        entryPoints: [join(ROOT, entry)],
        outfile: join(outdir, out),
        bundle: true,
        format: 'esm',
        platform: 'browser',
        target: ['es2022'],
        minify: true,
        legalComments: 'none',
        logLevel: 'warning',
      }),
    ),
  )
  if (isNetlifyBuild(env)) await rm(join(outdir, DEV_KEY_NAME), { force: true })
  return Object.keys(OUTPUTS).map((out) => join(outdir, out))
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = await buildClient()
  console.log(`built ${files.map((file) => file.slice(ROOT.length + 1)).join(', ')}${isNetlifyBuild() ? ' (removed public/dev-api-key.json)' : ''}`)
}
