/**
 * Revoking every token of an account at once: one conditional write of the
 * account record that bumps its token generation. Tokens carry the
 * generation they were made in, and the auth entry already reads the record,
 * so a revoked token is refused at no extra cost.
 */
import { z } from 'zod'
import type { Clock } from '../core/clock.ts'
import { readAccount, writeAccount } from '../credits/ledger.ts'
import { safePart } from '../storage/keys.ts'
import { type BlobPort, StorageUnavailableError } from '../storage/port.ts'

/** What `POST /api/admin/accounts/:name/revoke-tokens` answers. */
export const RevokedTokensSchema = z.strictObject({
  account: z.string(),
  /** The account's token generation now: tokens made in an earlier one are refused. */
  tokenGeneration: z.number().int().nonnegative(),
  revokedBefore: z.iso.datetime(),
})
export type RevokedTokens = z.infer<typeof RevokedTokensSchema>

export class UnknownAccountError extends Error {
  override name = 'UnknownAccountError'
}

/** Ends every token the account has made so far; returns the new generation. Decided by content, so a lost answer is not a second bump. */
export async function revokeAccountTokens(store: BlobPort, clock: Clock, account: string): Promise<number> {
  safePart(account, 'account')
  let target: number | null = null
  for (let round = 0; round < 20; round++) {
    const current = await readAccount(store, account)
    if (!current) throw new UnknownAccountError(`no account "${account}"`)
    const generation = current.record.tokenGeneration
    target ??= generation + 1
    if (generation >= target) return generation
    const written = await writeAccount(store, clock, current, { ...current.record, tokenGeneration: target }, []).catch((error: unknown) => {
      if (!(error instanceof StorageUnavailableError)) throw error
      return null
    })
    if (written) return target
  }
  throw new StorageUnavailableError(`account ${account} kept changing while its tokens were revoked`)
}
