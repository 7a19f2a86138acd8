/** The caller's account, and its webhook settings. */
import { z } from 'zod'
import { IssueSchema, defineRoute } from '../openapi.ts'
import { AccountViewSchema } from '../../credits/index.ts'
import { AccountWebhookBodySchema, AccountWebhookSchema } from '../../webhooks/account.ts'

const issues = { issues: z.array(IssueSchema).optional() }

export const accountRoutes = [
  defineRoute({
    method: 'GET',
    path: '/api/account',
    operationId: 'getAccount',
    summary: 'The caller’s balance and newest ledger entries',
    tags: ['account'],
    auth: 'apiKey',
    responses: { 200: { description: 'Balance, and the newest ledger entries first.', body: AccountViewSchema } },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/account/webhook',
    operationId: 'getAccountWebhook',
    summary: 'The account’s default webhook URL and the secret its webhooks are signed with',
    description: 'The secret (`whsec_…`, Standard Webhooks) is derived from the deployment’s signing secret and the account: it is the same on every call and changes only with `JOBS_SIGNING_SECRET`.',
    tags: ['account'],
    auth: 'apiKey',
    responses: { 200: { description: 'The webhook settings.', body: AccountWebhookSchema } },
  }),
  defineRoute({
    method: 'PUT',
    path: '/api/account/webhook',
    operationId: 'setAccountWebhook',
    summary: 'Set (or clear, with null) the URL jobs POST their outcome to when their submit names none',
    tags: ['account'],
    auth: 'apiKey',
    body: AccountWebhookBodySchema,
    responses: {
      200: { description: 'The webhook settings now.', body: AccountWebhookSchema },
      400: { description: 'Bad JSON, or a URL that cannot be a target (not https, credentials, a private or loopback address).', errors: ['invalid_request'], extra: issues },
      404: { description: 'The account has no record yet.', errors: ['not_found'] },
      413: { description: 'The body is over 16 KB.', errors: ['payload_too_large'], extra: { maxBytes: z.number().int() } },
      415: { description: 'The body is not `application/json`.', errors: ['unsupported_media_type'] },
    },
  }),
]
