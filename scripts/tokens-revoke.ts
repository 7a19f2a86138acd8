/**
 * Revokes every browser token an account has made so far (its API keys keep
 * working; tokens minted afterwards work too).
 *   npm run tokens:revoke -- --account acme
 */
import { systemClock } from '../lib/core/clock.ts'
import { revokeAccountTokens } from '../lib/tokens/revoke.ts'
import { flags, openStore } from './store.ts'

const { account } = flags()
if (!account) {
  console.error('usage: npm run tokens:revoke -- --account NAME')
  process.exit(2)
}
const { store, where, close } = await openStore()
try {
  const generation = await revokeAccountTokens(store, systemClock, account)
  console.log(`Revoked every token of account "${account}" in ${where} (token generation is now ${generation}).`)
} catch (error) {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
} finally {
  await close()
}
