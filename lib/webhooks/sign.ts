/**
 * Standard Webhooks signatures (standardwebhooks.com): `webhook-id`,
 * `webhook-timestamp` (Unix seconds) and `webhook-signature`
 * (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`), with a secret per
 * account. The secret is derived from JOBS_SIGNING_SECRET and the account
 * name, so it is never stored; its owner reads it with an API key
 * (GET /api/account/webhook).
 */
import { Webhook } from 'standardwebhooks'
import { purposeKey } from '../core/signing.ts'

/** The account's webhook secret, in the `whsec_` form receivers' libraries take. */
export function webhookSecretFor(signingSecret: string, account: string): string {
  return `whsec_${purposeKey(signingSecret, `webhook-secret:${account}`).toString('base64')}`
}

/** The same for every delivery of a job's webhook, so a receiver de-duplicates on it. */
export const webhookIdFor = (jobId: string) => `msg_${jobId}`

/** The three headers of one delivery, signed at `at` (a retry signs again with its own time). */
export function signedHeaders(secret: string, webhookId: string, at: number, body: string): Record<string, string> {
  const timestamp = new Date(Math.floor(at / 1000) * 1000)
  return {
    'webhook-id': webhookId,
    'webhook-timestamp': String(Math.floor(at / 1000)),
    'webhook-signature': new Webhook(secret).sign(webhookId, timestamp, body),
  }
}
