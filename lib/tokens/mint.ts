/**
 * Making tokens: a watch token for the job a submit just made, and tokens an
 * API key asks for with `POST /api/tokens`. A token never grants more than
 * the key behind it: it names the key's account, carries the key's id (so
 * revoking the key ends it), and only a key may mint one.
 */
import { randomBytes } from 'node:crypto'
import { z } from 'zod'
import { iso } from '../core/clock.ts'
import type { Deps } from '../core/deps.ts'
import { ApiError, invalidRequest } from '../core/errors.ts'
import { readAccount } from '../credits/index.ts'
import { zodIssues } from '../jobs/submit.ts'
import { type Caller, requireApiKey } from './caller.ts'
import {
  DEFAULT_TOKEN_TTL_SECONDS,
  MAX_TOKEN_TTL_SECONDS,
  TOKEN_ACTIONS,
  type TokenAction,
  type TokenClaims,
  type TokenScope,
  TokenScopeSchema,
  signToken,
  tokenKey,
} from './token.ts'

/** How long a submit's watch token lives: a job runs at most 15 minutes, and a page may show it for a while after. */
export const WATCH_TOKEN_TTL_SECONDS = 3600

/** The answer of `POST /api/tokens` (and of the local `GET /api/dev/token`). */
export const MintedTokenSchema = z.strictObject({
  token: z.string(),
  expiresAt: z.iso.datetime(),
  account: z.string(),
  scope: TokenScopeSchema,
  actions: z.array(z.enum(TOKEN_ACTIONS)),
})
export type MintedToken = z.infer<typeof MintedTokenSchema>

/** What the submit answers (202, and the 200 replay) add to the job: a read-only token for it. */
export const WatchTokenFieldsSchema = z.strictObject({ watchToken: z.string(), watchTokenExpiresAt: z.iso.datetime() })

type MintDeps = Pick<Deps, 'store' | 'clock' | 'signingSecret'>

/** Signs a token for the caller's account, in its current token generation. */
export async function mintToken(deps: MintDeps, caller: Caller, scope: TokenScope, actions: TokenAction[], ttlSeconds: number): Promise<MintedToken> {
  // Keys of the old format authenticate without reading the account record: read it for the generation.
  const account = caller.accountRead ?? (await readAccount(deps.store, caller.account))
  const iat = Math.floor(deps.clock.now() / 1000)
  const claims: TokenClaims = {
    v: 1,
    account: caller.account,
    scope,
    actions,
    iat,
    exp: iat + ttlSeconds,
    gen: account?.record.tokenGeneration ?? 0,
    ...(caller.keyId ? { kid: caller.keyId } : {}),
    jti: randomBytes(12).toString('hex'),
  }
  return {
    token: signToken(tokenKey(deps.signingSecret), claims),
    expiresAt: iso(claims.exp * 1000)!,
    account: caller.account,
    scope,
    actions,
  }
}

/** The read-only token for one job that the submit answer carries (`watchToken`, `watchTokenExpiresAt`). */
export async function watchTokenFor(deps: MintDeps, caller: Caller, jobId: string) {
  const minted = await mintToken(deps, caller, { job: jobId }, ['read'], WATCH_TOKEN_TTL_SECONDS)
  return { watchToken: minted.token, watchTokenExpiresAt: minted.expiresAt }
}

export const MintRequestSchema = z.strictObject({
  scope: TokenScopeSchema,
  actions: z.array(z.enum(TOKEN_ACTIONS)).min(1).max(TOKEN_ACTIONS.length).optional(),
  ttlSeconds: z.number().int().min(1).max(MAX_TOKEN_TTL_SECONDS).optional(),
})

/** What each scope's token may do; the default is the first. */
const ACTIONS_FOR: Record<'job' | 'sourceTaskId' | 'submit', TokenAction[]> = {
  job: ['read', 'cancel'],
  sourceTaskId: ['read', 'cancel'],
  submit: ['submit'],
}

/**
 * `POST /api/tokens`: an API key mints a token with a chosen scope, actions
 * and lifetime. Bad input is a 400 and mints nothing; a token cannot mint.
 */
export async function mintRequested(deps: MintDeps & Pick<Deps, 'kinds'>, caller: Caller, body: unknown): Promise<MintedToken> {
  requireApiKey(caller, 'mint tokens')
  const parsed = MintRequestSchema.safeParse(body)
  if (!parsed.success) throw invalidRequest('The request body is not a valid token request.', zodIssues(parsed.error))
  const { scope, ttlSeconds = DEFAULT_TOKEN_TTL_SECONDS } = parsed.data
  const scopeName = 'submit' in scope ? 'submit' : 'job' in scope ? 'job' : 'sourceTaskId'
  const possible = ACTIONS_FOR[scopeName]
  const actions = [...new Set(parsed.data.actions ?? [possible[0]!])].sort((a, b) => TOKEN_ACTIONS.indexOf(a) - TOKEN_ACTIONS.indexOf(b))
  const wrong = actions.filter((action) => !possible.includes(action))
  if (wrong.length) {
    throw invalidRequest(`A ${scopeName} token may only ${possible.join(' or ')}.`, [
      { path: 'actions', message: `${wrong.join(', ')} not possible with scope ${scopeName}` },
    ])
  }
  if ('submit' in scope) {
    const unknown = scope.submit.filter((kind) => !deps.kinds.get(kind))
    if (unknown.length) {
      throw new ApiError(400, 'unknown_kind', `There is no job kind ${unknown.map((k) => `"${k}"`).join(', ')}.`, {
        extra: { kinds: [...deps.kinds.keys()], issues: [{ path: 'scope.submit', message: `unknown kind ${unknown.join(', ')}` }] },
      })
    }
    scope.submit = [...new Set(scope.submit)]
  }
  return mintToken(deps, caller, scope, actions, ttlSeconds)
}
