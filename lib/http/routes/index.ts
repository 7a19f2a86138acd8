/**
 * Every public route, described once. A new route: describe it with
 * `defineRoute` in the file of its area (or a new file listed here). The test
 * suite fails on a function whose path is not described, and on any answer
 * that does not match its description.
 */
import type { ApiRoute } from '../openapi.ts'
import { accountRoutes } from './account.ts'
import { adminRoutes } from './admin.ts'
import { assetRoutes } from './assets.ts'
import { jobRoutes } from './jobs.ts'
import { metaRoutes } from './meta.ts'
import { streamRoutes } from './stream.ts'
import { tokenRoutes } from './tokens.ts'

export const apiRoutes: readonly ApiRoute[] = [...jobRoutes, ...streamRoutes, ...assetRoutes, ...accountRoutes, ...tokenRoutes, ...adminRoutes, ...metaRoutes]

/**
 * Paths a function serves that the document leaves out on purpose, each with
 * why. The test suite holds the document to every other function's path, and
 * the answer checker does not check answers on these.
 */
export const undocumentedPaths: Readonly<Record<string, string>> = {
  '/api/dev/token':
    'local development only: it exists under `npm run dev` and answers 404 to every method anywhere else, so a deploy does not have it (see lib/tokens/dev.ts)',
}
