/**
 * Held locks and account balances for the operator, without listing jobs:
 * the locks of at most ADMIN_MAX_LOCKS live jobs (found through `queue/`,
 * which holds only live jobs) and at most ADMIN_MAX_ACCOUNTS accounts.
 * Reads: 1 list of `queue/` and ≤ 3 per lock shown (state or spec, lock);
 * 1 list of `account/` and 1 read per account shown.
 */
import type { Deps } from '../core/deps.ts'
import { CorruptRecordError } from '../core/records.ts'
import { readAccount } from '../credits/index.ts'
import { readSpec, readState } from '../jobs/state.ts'
import { peekLock } from '../locks/lock.ts'
import { keys } from '../storage/keys.ts'

/** Live jobs whose locks are shown per request. */
export const ADMIN_MAX_LOCKS = 100
/** Accounts shown per request. */
export const ADMIN_MAX_ACCOUNTS = 200

export interface HeldLock {
  resource: string
  jobId: string
  acquiredAt: string
  expiresAt: string
  expired: boolean
}

type Unreadable = { unreadable: string }

/** The locks held by live jobs (`liveKeys`: the `queue/` keys, listed by the caller or here). */
export async function heldLocks(deps: Deps, liveKeys?: string[]) {
  const live = liveKeys ?? (await deps.store.list(keys.specPrefix)).keys
  const rows = await Promise.all(live.slice(0, ADMIN_MAX_LOCKS).map((key) => readHeldLock(deps, key.slice(keys.specPrefix.length))))
  const locks: HeldLock[] = []
  const unreadable: { record: string }[] = []
  for (const row of rows) {
    if (row && 'unreadable' in row) unreadable.push({ record: row.unreadable })
    else if (row) locks.push(row)
  }
  return { locks, unreadable, truncated: live.length > ADMIN_MAX_LOCKS }
}

export async function accountBalances(deps: Deps) {
  const { keys: accountKeys } = await deps.store.list(keys.accountPrefix)
  const accounts = []
  for (const key of accountKeys.slice(0, ADMIN_MAX_ACCOUNTS)) {
    const stored = await readAccount(deps.store, key.slice(keys.accountPrefix.length))
    if (!stored) continue
    accounts.push({ account: stored.record.account, balance: stored.record.balance, ledgerEntries: stored.record.ledger.lastSeq })
  }
  return accounts
}

/** What `GET /api/admin/overview` answers. */
export async function overview(deps: Deps) {
  const [locks, accounts] = await Promise.all([heldLocks(deps), accountBalances(deps)])
  return { locks: locks.locks, locksTruncated: locks.truncated, unreadable: locks.unreadable, accounts }
}

/** The lock a live job holds, if it still holds one. */
async function readHeldLock(deps: Deps, jobId: string): Promise<HeldLock | Unreadable | null> {
  try {
    const stored = await readState(deps.store, jobId)
    const lockKey = stored ? stored.state.lockKey : ((await readSpec(deps.store, jobId))?.lockKey ?? null)
    if (!lockKey) return null
    const lock = await peekLock(deps.store, lockKey)
    if (lock?.record.state !== 'held') return null
    return {
      resource: lockKey,
      jobId: lock.record.jobId,
      acquiredAt: new Date(lock.record.acquiredAt).toISOString(),
      expiresAt: new Date(lock.record.expiresAt).toISOString(),
      expired: lock.record.expiresAt <= deps.clock.now(),
    }
  } catch (error) {
    if (error instanceof CorruptRecordError) return { unreadable: error.key }
    throw error
  }
}
