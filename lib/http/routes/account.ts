/** The caller's account. */
import { defineRoute } from '../openapi.ts'
import { AccountViewSchema } from '../../credits/index.ts'

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
]
