/** The operator snapshot: recent jobs with both error forms, held locks, accounts; bounded reads per request. */
import type { Deps } from '../core/deps.ts'
import { initialState, readSpec, readState } from '../jobs/state.ts'
import { keys } from '../storage/keys.ts'
import { operatorJob, specStatus } from '../jobs/views.ts'
import { invalidRequest } from '../core/errors.ts'
import { JOB_ID_PATTERN } from '../core/ids.ts'
import { CorruptRecordError } from '../core/records.ts'
import { JOB_STATUSES } from '../core/types.ts'
import { ADMIN_MAX_LOCKS, accountBalances, heldLocks } from './overview.ts'

/** Job records read per request at most: a status filter pages through the rest with `before`. */
export const ADMIN_MAX_READS = 200
const READ_PARALLEL = 25

export interface AdminQuery {
  limit: number
  status?: string
  /** Only jobs older than this id (the `next` of the previous page). */
  before?: string
}

/**
 * Newest jobs first, a page at a time: at most `max(limit, ADMIN_MAX_READS)`
 * job records are read per request, whatever the filter matches, and `next`
 * says where the following page starts. A record that cannot be parsed is
 * listed under `unreadable` and skipped.
 */
export async function adminSnapshot(deps: Deps, options: AdminQuery) {
  const [{ keys: stateKeys }, { keys: liveKeys }, { keys: waitingKeys }] = await Promise.all([
    deps.store.list(keys.statePrefix),
    deps.store.list(keys.specPrefix),
    deps.store.list(keys.waitingPrefix),
  ])
  const ids = new Set([
    ...stateKeys.map((k) => k.slice(keys.statePrefix.length)),
    ...liveKeys.map((k) => k.slice(keys.specPrefix.length)),
    ...waitingKeys.map((k) => k.slice(keys.waitingPrefix.length)),
  ])
  // Ids start with their creation time, so sorting them sorts by age.
  const { before } = options
  const newest = [...ids].filter((id) => before === undefined || id < before).sort().reverse()
  const maxReads = Math.max(options.limit, ADMIN_MAX_READS)
  const jobs: ReturnType<typeof operatorJob>[] = []
  const unreadable: { record: string }[] = []
  let examined = 0
  while (examined < newest.length && jobs.length < options.limit && examined < maxReads) {
    const batch = newest.slice(examined, Math.min(examined + READ_PARALLEL, maxReads, examined + options.limit - jobs.length))
    examined += batch.length
    for (const found of await Promise.all(batch.map((jobId) => readOperatorJob(deps, jobId)))) {
      if (found === null) continue
      if ('unreadable' in found) unreadable.push({ record: found.unreadable })
      else if (!options.status || found.status === options.status) jobs.push(found)
    }
  }
  const next = examined < newest.length ? (newest[examined - 1] ?? null) : null

  const [{ locks, unreadable: lockUnreadable }, accounts] = await Promise.all([heldLocks(deps, liveKeys), accountBalances(deps)])
  unreadable.push(...lockUnreadable)
  return {
    generatedAt: new Date(deps.clock.now()).toISOString(),
    jobs,
    /** Pass as `before` for the next, older page; null when every job was examined. */
    next,
    examined,
    locks,
    locksTruncated: liveKeys.length > ADMIN_MAX_LOCKS,
    unreadable,
    accounts,
  }
}

/** Names a record that could not be parsed: listed for the operator, skipped otherwise. */
type Unreadable = { unreadable: string }

/** A job as the operator sees it; null when gone. */
export async function readOperatorJob(deps: Deps, jobId: string): Promise<ReturnType<typeof operatorJob> | Unreadable | null> {
  try {
    const stored = await readState(deps.store, jobId)
    if (stored) return operatorJob(stored.state)
    const spec = await readSpec(deps.store, jobId)
    return spec ? operatorJob({ ...initialState(spec, spec.createdAt), status: specStatus(spec) }) : null
  } catch (error) {
    if (error instanceof CorruptRecordError) return { unreadable: error.key }
    throw error
  }
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
  const before = params.get('before') ?? undefined
  if (before !== undefined && !JOB_ID_PATTERN.test(before)) {
    throw invalidRequest('"before" must be a job id (the "next" of the previous page).', [{ path: 'query.before', message: 'not a job id' }])
  }
  return { limit, status, before }
}
