/**
 * Makes an API key for an account and prints it (the only time it is shown).
 *   npm run keys:create -- --account acme [--label "mobile app"]
 */
import { createApiKey } from '../lib/accounts/api-keys.ts'
import { systemClock } from '../lib/core/clock.ts'
import { createAccount, readAccount } from '../lib/credits/index.ts'
import { flags, openStore } from './store.ts'

const { account, label = 'default' } = flags()
if (!account) {
  console.error('usage: npm run keys:create -- --account NAME [--label TEXT]')
  process.exit(2)
}
const { store, where, close } = await openStore()
try {
  if (!(await readAccount(store, account))) {
    await createAccount(store, systemClock, account, 0)
    console.error(`Created account "${account}" with 0 credits (npm run accounts -- grant --account ${account} --credits N).`)
  }
  const apiKey = await createApiKey(store, systemClock, account, label)
  console.error(`Created a key for account "${account}" in ${where}. Store it now; it cannot be shown again.`)
  console.log(apiKey)
} catch (error) {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
} finally {
  await close()
}
