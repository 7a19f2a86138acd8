/** Browser tokens: minting (an API key) and revoking (the operator). */
import { z } from 'zod'
import { IssueSchema, defineRoute } from '../openapi.ts'
import { MintRequestSchema, MintedTokenSchema } from '../../tokens/mint.ts'
import { RevokedTokensSchema } from '../../tokens/revoke.ts'

const issues = { issues: z.array(IssueSchema).optional() }

export const tokenRoutes = [
  defineRoute({
    method: 'POST',
    path: '/api/tokens',
    operationId: 'mintToken',
    summary: 'Mint a browser token',
    description:
      'An API key (on your backend) mints a short-lived token for a browser: scope `job` (one job), `sourceTaskId` (the caller’s jobs and files of that task) with actions `read` (default) and `cancel`, or `submit` (the listed kinds) with action `submit`. `ttlSeconds` 1–86400, default 3600. A token cannot mint (403). Minting reads the account once and writes nothing.',
    tags: ['tokens'],
    auth: 'apiKey',
    body: MintRequestSchema,
    responses: {
      201: { description: 'The token, and what it may do until when.', body: MintedTokenSchema },
      400: {
        description: 'Bad JSON, a scope or actions that do not go together, a TTL out of range, or an unknown kind in a submit scope.',
        errors: ['invalid_request', 'unknown_kind'],
        extra: { ...issues, kinds: z.array(z.string()).optional() },
      },
      413: { description: 'The body is over 16 KB.', errors: ['payload_too_large'], extra: { maxBytes: z.number().int() } },
      415: { description: 'The body is not `application/json`.', errors: ['unsupported_media_type'] },
    },
  }),
  defineRoute({
    method: 'POST',
    path: '/api/admin/accounts/:name/revoke-tokens',
    operationId: 'adminRevokeTokens',
    summary: 'End every token an account has made so far',
    description: 'One conditional write of the account record: its keys, and tokens minted afterwards, keep working.',
    tags: ['admin'],
    auth: 'admin',
    params: { name: 'The account name.' },
    responses: {
      200: { description: 'Revoked.', body: RevokedTokensSchema },
      404: { description: 'No such account.', errors: ['not_found'] },
    },
  }),
]
