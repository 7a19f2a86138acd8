/**
 * One job as the operator sees it: state with both error forms, a page of
 * its event timeline, its attempts, the lock it holds, its charge and files.
 * Bounded: at most 3 reads to find the job, 3 for a timeline page (pages of
 * 100, chunks of 10), 1 for the lock, 1 for the reservation, 1 for a failed
 * job's kept input, 1 for its webhook deliveries, and the account
 * plus at most LEDGER_WINDOW entries after each point where the job's charge
 * or refund could land (a few more reads each): never the whole ledger.
 */
import type { Deps } from '../core/deps.ts'
import { iso } from '../core/clock.ts'
import { notFound } from '../core/errors.ts'
import { JOB_ID_PATTERN } from '../core/ids.ts'
import { type JobState, isTerminal } from '../core/types.ts'
import { type LedgerEntry, LedgerEntrySchema, ledgerLog, readAccount, readReservation } from '../credits/index.ts'
import { LogMovedError, jobLog, readEvents } from '../events/log.ts'
import { mayBeLive, peekLock } from '../locks/lock.ts'
import { initialState, readFailedSpec, readSpec, readState } from '../jobs/state.ts'
import { operatorJob, specStatus } from '../jobs/views.ts'
import { deliveryView } from '../webhooks/delivery.ts'
import type { DetailQuery, JobDetail } from './schemas.ts'

/** Ledger entries looked at after each point where this job's money may have moved. */
export const LEDGER_WINDOW = 200

/** The job's state (or, while queued, the state its spec starts as); 404 when there is none. */
export async function findJob(deps: Pick<Deps, 'store'>, jobId: string): Promise<JobState> {
  if (!JOB_ID_PATTERN.test(jobId)) throw notFound()
  const stored = await readState(deps.store, jobId)
  if (stored) return stored.state
  const spec = await readSpec(deps.store, jobId)
  if (spec) return { ...initialState(spec, spec.createdAt), status: specStatus(spec) }
  // Claimed and cleaned up between our two reads: its state exists now.
  const claimed = await readState(deps.store, jobId)
  if (claimed) return claimed.state
  throw notFound()
}

export async function jobDetail(deps: Deps, jobId: string, query: DetailQuery): Promise<JobDetail> {
  for (let round = 0; ; round++) {
    const state = await findJob(deps, jobId)
    try {
      return await detailOf(deps, state, query)
    } catch (error) {
      // The log cap or retention removed an event blob between our reads: read the job again.
      if (error instanceof LogMovedError && round < 2) continue
      throw error
    }
  }
}

async function detailOf(deps: Deps, state: JobState, query: DetailQuery): Promise<JobDetail> {
  const [timeline, lock, charge, rerunnable, webhook] = await Promise.all([
    timelineOf(deps, state, query),
    lockOf(deps, state),
    chargeOf(deps, state),
    state.status === 'failed' ? readFailedSpec(deps.store, state.jobId).then((spec) => spec !== null) : false,
    deliveryView(deps, state.jobId, state.webhookUrl),
  ])
  return {
    job: operatorJob(state),
    attempts: attemptsOf(state),
    timeline,
    lock,
    charge,
    assets: state.assets,
    webhook,
    actions: { cancel: !isTerminal(state.status), retry: rerunnable },
  }
}

/** The job's current (or last) attempt; earlier ones show in the timeline as `attempt_failed`. */
function attemptsOf(state: JobState): JobDetail['attempts'] {
  if (state.attempt === 0) return []
  return [
    {
      attempt: state.attempt,
      startedAt: iso(state.startedAt),
      heartbeatAt: iso(state.heartbeatAt),
      endedAt: iso(state.finishedAt),
      // `retrying`: this attempt failed and the next one waits.
      outcome: state.status === 'queued' || state.status === 'scheduled' ? 'running' : state.status,
    },
  ]
}

async function timelineOf(deps: Deps, state: JobState, query: DetailQuery): Promise<JobDetail['timeline']> {
  const { log } = state
  const after = Math.min(query.after, log.lastSeq)
  const slice = await readEvents(deps.store, jobLog(state.jobId), log, after, query.limit)
  return {
    events: slice.events,
    next: slice.events.at(-1)?.seq ?? after,
    firstSeq: log.firstSeq,
    lastSeq: log.lastSeq,
    droppedBefore: slice.truncatedBefore,
  }
}

async function lockOf(deps: Deps, state: JobState): Promise<JobDetail['lock']> {
  if (!state.lockKey) return null
  const lock = await peekLock(deps.store, state.lockKey)
  if (!lock) return { resource: state.lockKey, state: 'absent', holder: null, heldByThisJob: false, acquiredAt: null, expiresAt: null, expired: false }
  const { record } = lock
  const holder = record.state === 'reaping' ? null : record.jobId
  return {
    resource: state.lockKey,
    state: record.state,
    holder,
    heldByThisJob: record.state === 'held' && holder === state.jobId,
    acquiredAt: record.state === 'held' ? iso(record.acquiredAt) : null,
    expiresAt: record.state === 'held' ? iso(record.expiresAt) : null,
    expired: record.state === 'held' && !mayBeLive(record, deps.clock.now()),
  }
}

async function chargeOf(deps: Deps, state: JobState): Promise<JobDetail['charge']> {
  const reservationRead = state.reservation ? readReservation(deps.store, state.reservation) : Promise.resolve(null)
  const [account, reservation] = await Promise.all([readAccount(deps.store, state.account), reservationRead])
  // Where this job's money can have moved: its charge after the basis its submit
  // recorded, its own refund after refundFrom, its reservation's refund after its `from`.
  const points = [state.creditBasis, state.refundFrom, reservation?.reservation.refund?.from].filter((p): p is number => typeof p === 'number')
  const windows = [...new Set(points)].map((after) => ({ after, upTo: after + LEDGER_WINDOW }))
  const entries = new Map<number, LedgerEntry>()
  if (account) {
    const { ledger } = account.record
    const slices = await Promise.all(
      windows.filter((w) => w.after < ledger.lastSeq).map((w) => readEvents(deps.store, ledgerLog(state.account), ledger, w.after, LEDGER_WINDOW)),
    )
    for (const event of slices.flatMap((slice) => slice.events)) {
      const entry = LedgerEntrySchema.parse(event)
      const ours = entry.data.jobId === state.jobId || (state.clientJobId !== null && entry.data.clientJobId === state.clientJobId && entry.type === 'refund')
      if (ours) entries.set(entry.seq, entry)
    }
  }
  return {
    creditCharged: state.creditCharged,
    clientJobId: state.clientJobId,
    creditBasis: state.creditBasis ?? null,
    refundFrom: state.refundFrom ?? null,
    entries: [...entries.values()].sort((a, b) => a.seq - b.seq),
    searched: windows,
    reservation: reservation ? { key: state.reservation, ...reservation.reservation } : null,
  }
}
