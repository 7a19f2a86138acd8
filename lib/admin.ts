/** The operator snapshot: recent jobs with both error forms, and held locks. */
import type { Deps } from './deps.ts'
import { initialState, readSpec, readState } from './job-state.ts'
import { readAccount } from './credits.ts'
import { peekLock } from './lock.ts'
import { keys } from './storage/keys.ts'
import { operatorJob } from './views.ts'
import { invalidRequest } from './errors.ts'
import { JOB_STATUSES } from './types.ts'

export async function adminSnapshot(deps: Deps, options: { limit: number; status?: string }) {
  const { keys: stateKeys } = await deps.store.list(keys.statePrefix)
  const { keys: liveKeys } = await deps.store.list(keys.specPrefix)
  const ids = new Set([...stateKeys.map((k) => k.slice(keys.statePrefix.length)), ...liveKeys.map((k) => k.slice(keys.specPrefix.length))])
  // Ids start with their creation time, so sorting them sorts by age.
  const newest = [...ids].sort().reverse()
  const jobs = []
  const locks = []
  for (const jobId of newest) {
    if (jobs.length >= options.limit) break
    const stored = await readState(deps.store, jobId)
    if (!stored) {
      const spec = await readSpec(deps.store, jobId)
      if (!spec || (options.status && options.status !== 'queued')) continue
      jobs.push(operatorJob(initialState(spec, spec.createdAt)))
      continue
    }
    if (options.status && stored.state.status !== options.status) continue
    jobs.push(operatorJob(stored.state))
  }
  for (const key of liveKeys) {
    const jobId = key.slice(keys.specPrefix.length)
    const stored = await readState(deps.store, jobId)
    const spec = stored ? null : await deps.store.read(key)
    const lockKey = stored?.state.lockKey ?? (spec ? (JSON.parse(spec.data).lockKey as string | null) : null)
    if (!lockKey) continue
    const lock = await peekLock(deps.store, lockKey)
    if (lock?.record.state === 'held') {
      locks.push({
        resource: lockKey,
        jobId: lock.record.jobId,
        acquiredAt: new Date(lock.record.acquiredAt).toISOString(),
        expiresAt: new Date(lock.record.expiresAt).toISOString(),
        expired: lock.record.expiresAt <= deps.clock.now(),
      })
    }
  }
  const accounts = []
  const { keys: accountKeys } = await deps.store.list(keys.accountPrefix)
  for (const key of accountKeys.slice(0, 200)) {
    const stored = await readAccount(deps.store, key.slice(keys.accountPrefix.length))
    if (!stored) continue
    accounts.push({
      account: stored.record.account,
      balance: stored.record.balance,
      ledgerEntries: stored.record.ledger.lastSeq,
    })
  }
  return { generatedAt: new Date(deps.clock.now()).toISOString(), jobs, locks, accounts }
}

export function parseAdminQuery(params: URLSearchParams) {
  const raw = params.get('limit')
  const limit = raw === null ? 50 : Number(raw)
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
    throw invalidRequest('"limit" must be a whole number from 1 to 500.', [{ path: 'query.limit', message: 'out of range' }])
  }
  const status = params.get('status') ?? undefined
  if (status !== undefined && !(JOB_STATUSES as readonly string[]).includes(status)) {
    throw invalidRequest(`"status" must be one of ${JOB_STATUSES.join(', ')}.`, [{ path: 'query.status', message: 'unknown status' }])
  }
  return { limit, status }
}
