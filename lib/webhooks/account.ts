/**
 * An account's webhook settings: the default URL its jobs POST their outcome
 * to, kept in the account record (authentication reads it anyway, so a
 * submit applies it at no extra read), and the signing secret, which is
 * derived and never stored (sign.ts). Read and set with an API key only.
 */
import { z } from 'zod'
import type { Deps } from '../core/deps.ts'
import { invalidRequest, notFound } from '../core/errors.ts'
import { readAccount, writeAccount } from '../credits/ledger.ts'
import { zodIssues } from '../jobs/submit.ts'
import { StorageUnavailableError } from '../storage/port.ts'
import { webhookSecretFor } from './sign.ts'
import { MAX_WEBHOOK_URL_LENGTH, checkWebhookUrl } from './target.ts'

export const AccountWebhookBodySchema = z.strictObject({
  /** The default webhook URL (https), or null for none. */
  url: z.string().max(MAX_WEBHOOK_URL_LENGTH).nullable(),
})

export const AccountWebhookSchema = z.strictObject({
  /** Jobs without a `webhookUrl` of their own POST here when they end; null for none. */
  url: z.string().nullable(),
  /** The secret that signs this account's webhooks (Standard Webhooks `whsec_…`). */
  secret: z.string(),
})
export type AccountWebhook = z.infer<typeof AccountWebhookSchema>

export async function accountWebhook(deps: Pick<Deps, 'store' | 'signingSecret'>, account: string): Promise<AccountWebhook> {
  const current = await readAccount(deps.store, account)
  return { url: current?.record.webhookUrl ?? null, secret: webhookSecretFor(deps.signingSecret, account) }
}

/** Sets (or clears) the default URL: checked first, then one conditional write of the account record. */
export async function setAccountWebhook(deps: Pick<Deps, 'store' | 'clock' | 'settings' | 'signingSecret'>, account: string, body: unknown): Promise<AccountWebhook> {
  const parsed = AccountWebhookBodySchema.safeParse(body)
  if (!parsed.success) throw invalidRequest('The body is not a valid webhook setting.', zodIssues(parsed.error))
  const url = parsed.data.url === null ? null : checkWebhookUrl(parsed.data.url, { allowPrivateTargets: deps.settings.webhookAllowPrivateTargets }, 'url')
  for (let round = 0; round < 20; round++) {
    const current = await readAccount(deps.store, account)
    if (!current) throw notFound('account')
    if (current.record.webhookUrl === url) return { url, secret: webhookSecretFor(deps.signingSecret, account) }
    const written = await writeAccount(deps.store, deps.clock, current, { ...current.record, webhookUrl: url }, []).catch((error: unknown) => {
      if (!(error instanceof StorageUnavailableError)) throw error
      return null
    })
    if (written) return { url, secret: webhookSecretFor(deps.signingSecret, account) }
  }
  throw new StorageUnavailableError(`account ${account} kept changing while its webhook was set`)
}
