/**
 * Accounts and credits, for operators:
 *   npm run accounts -- create --account acme [--credits 100]
 *   npm run accounts -- grant  --account acme --credits 50 [--reason "support ticket 12"]
 *   npm run accounts -- set    --account acme --credits 0
 *   npm run accounts -- show   --account acme [--entries 20]
 * Local sandbox by default; a deployed site's store with NETLIFY_SITE_ID and NETLIFY_AUTH_TOKEN.
 */
import { systemClock } from '../lib/core/clock.ts'
import { accountView, createAccount, grantCredits, readLedger, setCredits } from '../lib/credits/index.ts'
import { flags, openStore } from './store.ts'

const [command] = process.argv.slice(2)
const { account, credits, reason, entries = '20' } = flags()
const amount = credits === undefined ? undefined : Number(credits)
if (!account || !['create', 'grant', 'set', 'show'].includes(command ?? '') || (amount !== undefined && !Number.isInteger(amount))) {
  console.error('usage: npm run accounts -- create|grant|set|show --account NAME [--credits N] [--reason TEXT]')
  process.exit(2)
}
const { store, where, close } = await openStore()
try {
  if (command === 'create') await createAccount(store, systemClock, account, amount ?? 0)
  if (command === 'grant') await grantCredits(store, systemClock, account, amount ?? 0, reason)
  if (command === 'set') await setCredits(store, systemClock, account, amount ?? 0, reason)
  const view = await accountView(store, account, Number(entries))
  const sum = (await readLedger(store, account)).reduce((total, entry) => total + entry.data.amount, 0)
  console.log(`${account} in ${where}: balance ${view.balance} (ledger sums to ${sum})`)
  for (const entry of view.ledger) {
    const { amount: delta, reason: why, jobId, clientJobId } = entry.data
    console.log(`  ${new Date(entry.ts).toISOString()}  ${entry.type.padEnd(6)} ${String(delta).padStart(6)}  ${why}${jobId ? `  ${jobId}` : ''}${clientJobId ? `  client ${clientJobId}` : ''}`)
  }
} catch (error) {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
} finally {
  await close()
}
