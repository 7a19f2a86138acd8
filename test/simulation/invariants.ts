/**
 * The invariants, checked after a run from the store's history of landed
 * writes (see sim-store.ts), the final store and what the actors observed.
 * protocol.test.ts explains each one; the numbers match the design brief.
 */
import { readLedger } from '../../lib/credits/index.ts'
import { jobLog, readEvents } from '../../lib/events/log.ts'
import { readState } from '../../lib/jobs/state.ts'
import { cancelJob, getJob, readFeed } from '../../lib/jobs/read.ts'
import { REAPING_GRACE_MS } from '../../lib/locks/lock.ts'
import { ApiError } from '../../lib/core/errors.ts'
import { type JobEvent, type JobSpec, type JobState, type LockRecord, TERMINAL_EVENT_TYPES, isTerminal } from '../../lib/core/types.ts'
import { expectCreditInvariants } from '../support/credit-invariants.ts'
import { checkCredits } from './invariants-credits.ts'
import { canonical, checkMoney } from './invariants-money.ts'
import type { Actor } from './scheduler.ts'
import { type Commit, aliasIds as A, specCreated } from './sim-store.ts'
import { checkLineOrder } from './invariants-line.ts'
import { checkSteps } from './invariants-steps.ts'
import { checkAccountLimit } from './invariants-account.ts'
import { ACCOUNTS, type World } from './world.ts'

export interface CheckReport {
  violations: string[]
  checks: number
  /** Per account and charged job: how many refunds its ledger must show (checked again after retention). */
  refundsDue?: Map<string, Map<string, number>>
}

/** The submit lets a lock whose job was never written be taken over after this (lib/jobs/submit.ts). */
const ORPHAN_LOCK_GRACE_MS = 30_000
/** A running job between two invocations (jobs/continuation.ts): no lease, a hand-over time. */
const handedOver = (state: JobState) => state.status === 'running' && state.lease === null && typeof state.handedOverAt === 'number'
const TERMINAL_EVENT_OF = { complete: 'done', failed: 'error', canceled: 'canceled' } as Record<string, string>

export interface JobHistory {
  jobId: string
  spec: JobSpec | null
  commits: { commit: Commit; state: JobState }[]
  /** The worker of the first attempt. */
  claimer: Actor | null
  /** The workers that claimed an attempt (the first, and each retry), in order. */
  claimers: Actor[]
}

export async function checkInvariants(world: World, phases: { quietFrom: number; horizon: number }): Promise<CheckReport> {
  const violations: string[] = []
  let checks = 0
  const expect = (condition: boolean, message: () => string) => {
    checks++
    if (!condition) violations.push(message())
  }
  const store = world.directDeps().store
  const history = world.store.history

  // ---- what happened to each job ------------------------------------------
  const jobs = new Map<string, JobHistory>()
  const jobOf = (jobId: string) => {
    let job = jobs.get(jobId)
    if (!job) jobs.set(jobId, (job = { jobId, spec: null, commits: [], claimer: null, claimers: [] }))
    return job
  }
  for (const commit of history) {
    const specOf = specCreated(commit)
    if (specOf) jobOf(specOf).spec ??= JSON.parse(commit.after!) as JobSpec
    if (commit.key.startsWith('job/')) {
      const job = jobOf(commit.key.slice(4))
      expect(commit.op === (job.commits.length === 0 ? 'create' : 'replace'), () => `I2 ${A(job.jobId)}: state written by ${commit.op} at #${commit.step} (${commit.actor?.name})`)
      if (commit.after === null) continue
      const state = JSON.parse(commit.after) as JobState
      const previous = job.commits.at(-1)?.state
      if (commit.actor?.kind === 'worker' && state.status === 'running' && (commit.op === 'create' || previous?.status === 'retrying' || (previous && handedOver(previous) && state.lease !== null))) {
        if (commit.op === 'create') job.claimer = commit.actor
        job.claimers.push(commit.actor)
      }
      job.commits.push({ commit, state })
    }
  }

  // ---- 1. one job per resource ------------------------------------------------
  // 1a. The lock blob only moves along its state machine: absent → held by
  //     create; held(J) → held(J) with a later expiry (renewed when J's worker
  //     claims it); held(J) → released(J) by J's clean-up; held(J) → held(K) only
  //     once J's lock expired, or J was never written (orphan of a dead
  //     submit) and its grace passed; released → held; released → reaping
  //     after half the retention; reaping → held/reaping after the grace;
  //     reaping → deleted. Never an unconditional put, never a delete of a
  //     held lock.
  //     With a line (queueing): held(J) → held(J) with the line's tail bumped
  //     (a job entered the line); held(J) → held(K), the line's head moved on,
  //     only once J ended (its release hands on) or J's lock is stale as above.
  const endedBy = (jobId: string, n: number) =>
    history.some((c) => c.n < n && c.key === `job/${jobId}` && c.after !== null && isTerminal((JSON.parse(c.after) as JobState).status))
  /** The actor whose write first made `jobId` the holder of the lock at `key`. */
  const takerOf = (key: string, jobId: string) =>
    history.find((c) => c.key === key && c.after !== null && (JSON.parse(c.after) as LockRecord).state === 'held' && (JSON.parse(c.after) as { jobId?: string }).jobId === jobId)?.actor ?? null
  for (const commit of history) {
    if (!commit.key.startsWith('lock/')) continue
    const before = commit.before ? (JSON.parse(commit.before) as LockRecord) : null
    const after = commit.after ? (JSON.parse(commit.after) as LockRecord) : null
    const t = commit.time
    let legal = false
    if (commit.op === 'create') legal = before === null && after?.state === 'held'
    else if (commit.op === 'delete') legal = before?.state === 'reaping'
    else if (commit.op === 'replace' && before && after) {
      if (before.state === 'held' && after.state === 'released') legal = after.jobId === before.jobId
      else if (before.state === 'held' && after.state === 'held' && after.jobId === before.jobId) {
        legal = after.acquiredAt === before.acquiredAt && after.expiresAt >= before.expiresAt // renewed at the claim
      } else if (before.state === 'held' && after.state === 'held') {
        // A lock whose job waits for its account does not expire: only its job's end or death frees it.
        const orphan = before.acquiredAt + ORPHAN_LOCK_GRACE_MS <= t && commit.previousHolderExists === false
        const stale = before.waitsForAccount ? orphan || endedBy(before.jobId, commit.n) : before.expiresAt <= t || orphan
        const handedOn = !!before.line && !!after.line && after.line.head > before.line.head && after.line.tail === before.line.tail
        // A submit that took the lock and failed before starting its job releases it, handing it on
        // (its job, if written, never gets a worker from it: it is failed by the submit, its guard or
        // the reaper, and a worker that came anyway would find the lock gone, checked by 1b–1d).
        const ownSubmitGaveUp = commit.actor !== null && commit.actor.kind === 'submit' && commit.actor === takerOf(commit.key, before.jobId)
        legal = stale || (handedOn && (endedBy(before.jobId, commit.n) || ownSubmitGaveUp))
        if (handedOn) world.count('lock handed to the next job in line')
      } else if (before.state === 'released' && after.state === 'held') legal = true
      else if (before.state === 'released' && after.state === 'reaping') legal = before.releasedAt + world.settings.retentionMs / 2 <= t
      else if (before.state === 'reaping') legal = before.since + REAPING_GRACE_MS <= t
    }
    if (before?.state === 'held' && after?.state === 'held') world.count(after.jobId === before.jobId ? 'lock renewed at claim' : 'lock taken over')
    expect(legal, () => `I1 ${A(commit.key)}: illegal ${commit.op} at #${commit.step} by ${commit.actor?.name}: ${A(commit.before ?? 'absent')} → ${A(commit.after ?? 'deleted')}`)
  }
  // 1d. A lock is taken over only from a job whose worker is no longer running
  //     (the README's "stale": its worker died or ended; Netlify's 15 minutes
  //     count from the invocation, which may start minutes after the submit).
  for (const commit of history) {
    if (!commit.key.startsWith('lock/') || commit.op !== 'replace' || !commit.before || !commit.after) continue
    const before = JSON.parse(commit.before) as LockRecord
    const after = JSON.parse(commit.after) as LockRecord
    if (before.state !== 'held' || after.state !== 'held' || before.jobId === after.jobId) continue
    if (endedBy(before.jobId, commit.n)) continue // handed on by its own release
    // Any of its attempts' workers.
    // (A worker started after the takeover is not one it was taken from: a job that lost its lock
    // before it started, e.g. while it waited for its account, may take it again later and run.)
    const claimer = jobs.get(before.jobId)?.claimers.find((actor) => actor.startedAt <= commit.time && (actor.endedStep === null || actor.endedStep >= commit.step))
    expect(!claimer, () => `I1 ${A(commit.key)}: ${commit.actor?.name} took the lock of ${A(before.jobId)} over at #${commit.step} while ${claimer?.name} (started t+${((claimer!.startedAt - before.acquiredAt) / 60_000).toFixed(1)} min after the lock) was running`)
    // Nor while it waits for its next attempt: the lock is the job's from its first claim to its end.
    const then = jobs.get(before.jobId)?.commits.filter((c) => c.commit.n < commit.n).at(-1)?.state
    expect(then?.status !== 'retrying', () => `retry ${A(commit.key)}: ${commit.actor?.name} took the lock of ${A(before.jobId)} over at #${commit.step} while that job waited for attempt ${then!.attempt + 1}`)
    expect(!then || !handedOver(then), () => `steps ${A(commit.key)}: ${commit.actor?.name} took the lock of ${A(before.jobId)} over at #${commit.step} while that job was between invocations`)
  }
  // 1b. A worker writes its job only while the job holds the resource's lock
  //     (the lock blob names it, at the instant the write lands), and
  // 1c. the working intervals of two jobs on one resource — from the claim
  //     to the last write their worker landed — never overlap.
  const intervals = new Map<string, { jobId: string; from: number; to: number }[]>()
  for (const job of jobs.values()) {
    const lockKey = job.spec?.lockKey ?? job.commits[0]?.state.lockKey
    if (!lockKey || job.claimers.length === 0) continue
    // Every write of its attempts' workers, and the lock is held across the waits between attempts.
    // A worker that found its lock taken over (an expired lock of a job Netlify started late) claims
    // and fails the job `lock_lost` at once, running nothing: those two writes are not work.
    const lostLock = new Set(job.commits.filter((c) => c.state.error?.code === 'lock_lost').map((c) => c.commit.actor))
    const own = job.commits.filter(
      (c) => ((c.commit.actor && job.claimers.includes(c.commit.actor)) || c.state.status === 'retrying' || handedOver(c.state)) && !lostLock.has(c.commit.actor),
    )
    if (own.length === 0) continue
    for (const { commit } of own) {
      const lock = commit.lockAt ? (JSON.parse(commit.lockAt) as LockRecord) : null
      expect(
        lock?.state === 'held' && lock.jobId === job.jobId,
        () => `I1 ${A(job.jobId)}: its worker wrote at #${commit.step} while lock ${lockKey} was ${A(commit.lockAt ?? 'absent')}`,
      )
    }
    const list = intervals.get(lockKey) ?? []
    list.push({ jobId: job.jobId, from: own[0]!.commit.n, to: own.at(-1)!.commit.n })
    intervals.set(lockKey, list)
  }
  for (const [lockKey, list] of intervals) {
    list.sort((a, b) => a.from - b.from)
    for (let i = 1; i < list.length; i++) {
      const previous = list[i - 1]!
      const next = list[i]!
      expect(next.from > previous.to, () => `I1 ${lockKey}: ${A(previous.jobId)} and ${A(next.jobId)} worked at the same time (writes ${previous.from}–${previous.to} and ${next.from}–${next.to})`)
    }
  }

  // 1e. Jobs that waited in a resource's line start in the order of their places.
  checkLineOrder(history, jobs.values(), expect, (what) => world.count(what))

  // ---- 2. exactly one terminal state; nothing after the terminal event --------
  // ---- 3. fencing: a worker writes only under its own, still valid lease ------
  const finals = new Map<string, JobState>()
  for (const job of jobs.values()) {
    const name = A(job.jobId)
    if (job.commits.length === 0) {
      violations.push(`I5 ${name}: never got a state (still queued after the quiet phase)`)
      continue
    }
    const leases = new Map<Actor, string>()
    let terminalAt = -1
    let previous: JobState | null = null
    for (const [i, { commit, state }] of job.commits.entries()) {
      const actor = commit.actor
      // Sealing a finished log (writing its last page, marking the log sealed) changes nothing
      // else; nor does marking its refund pending (settling its credits).
      const seal = previous !== null && isTerminal(previous.status) && withoutLogLayout(previous) === withoutLogLayout(state)
      if (seal) {
        previous = state
        continue
      }
      expect(terminalAt === -1, () => `I2 ${name}: written at #${commit.step} by ${actor?.name} after it was ${previous?.status}`)
      if (isTerminal(state.status) && terminalAt === -1) terminalAt = i
      if (previous) {
        expect(state.log.lastSeq >= previous.log.lastSeq && state.log.firstSeq >= previous.log.firstSeq, () => `I2 ${name}: log went backwards at #${commit.step}`)
        const before = new Map(previous.log.tail.map((e) => [e.seq, JSON.stringify(e)]))
        for (const event of state.log.tail) {
          const old = before.get(event.seq)
          expect(old === undefined || old === JSON.stringify(event), () => `I2 ${name}: event ${event.seq} rewritten at #${commit.step} by ${actor?.name}`)
        }
      }
      // Retries: an attempt runs only after the one before ended (`retrying`), numbered one more,
      // never more than the job's attempts; a worker may cancel a job that waits.
      if (previous) {
        const claim = previous.status === 'retrying' && state.status === 'running'
        expect(state.attempt === previous.attempt + (claim ? 1 : 0) || (previous.attempt === 0 && state.attempt === 1), () => `retry ${name}: attempt ${previous!.attempt} → ${state.attempt} (${previous!.status} → ${state.status}) at #${commit.step} by ${actor?.name}`)
        if (state.attempt > previous.attempt) world.count(state.attempt === 1 ? 'first attempt claimed' : 'retry attempt claimed')
        if (previous.status === 'retrying') expect(['running', 'retrying', 'canceled', 'failed'].includes(state.status), () => `retry ${name}: retrying → ${state.status} at #${commit.step}`)
      }
      expect(state.attempt <= (state.maxAttempts ?? 1), () => `retry ${name}: attempt ${state.attempt} of ${state.maxAttempts ?? 1}`)
      if (state.status === 'retrying' && previous?.status !== 'retrying') world.count(`retry scheduled (${state.nextAttemptAt! - commit.time <= 10_000 ? 'short wait' : 'long wait'})`)
      if (actor?.kind === 'worker') {
        const continuation = previous !== null && handedOver(previous) && state.status === 'running' && state.lease !== null
        const claim = state.status === 'running' && (commit.op === 'create' || previous?.status === 'retrying' || continuation)
        if (continuation) world.count('continuation claimed')
        if (claim) leases.set(actor, state.lease ?? '')
        else if (previous?.status === 'retrying' && state.status === 'canceled') world.count('worker canceled a waiting job')
        // A cancel accepted while the job was handed over: the next invocation's claim ends it.
        else if (previous !== null && handedOver(previous) && previous.cancelRequested && state.status === 'canceled') world.count('worker canceled a handed-over job')
        else {
          const lease = leases.get(actor)
          expect(
            lease !== undefined && previous?.lease === lease && previous.status === 'running' && (state.lease === lease || (state.lease === null && (state.status === 'retrying' || handedOver(state)))),
            () =>
              `I3 ${name}: ${actor.name} wrote at #${commit.step} (${state.status}, events ${previous?.log.lastSeq}→${state.log.lastSeq}) ` +
              `although the job was ${previous?.status} under ${previous?.lease === lease ? 'its' : 'another'} lease`,
          )
        }
      }
      previous = state
    }
    const final = job.commits.at(-1)!.state
    finals.set(job.jobId, final)
    const ender = job.commits[terminalAt]?.commit.actor
    if (ender) world.count(`${final.status} by ${ender.kind}${final.error ? ` (${final.error.code})` : ''}`)
    expect(isTerminal(final.status), () => `I5 ${name}: still ${final.status} after the quiet phase (live jobs must end within one lock TTL plus a reaper period)`)

    // The whole log, as a late reader replays it.
    const stored = await readState(store, job.jobId)
    expect(stored?.state.log.lastSeq === final.log.lastSeq, () => `I2 ${name}: stored state differs from the last landed write`)
    const { events } = await readEvents(store, jobLog(job.jobId), final.log, 0, 1000)
    const first = final.log.firstSeq
    expect(events.every((e, i) => e.seq === first + i) && (events.at(-1)?.seq ?? 0) === final.log.lastSeq, () => `I2 ${name}: log has gaps: ${events.map((e) => e.seq).join(',')}`)
    const terminal = events.filter((e) => TERMINAL_EVENT_TYPES.has(e.type))
    if (isTerminal(final.status)) {
      expect(terminal.length === 1 && events.at(-1) === terminal[0], () => `I2 ${name}: ${terminal.length} terminal events (${events.map((e) => e.type).join(',')})`)
      expect(terminal[0]?.type === TERMINAL_EVENT_OF[final.status], () => `I2 ${name}: status ${final.status} but terminal event ${terminal[0]?.type}`)
    }
    // Exactly-once work per attempt, as the log tells it: one `started` per attempt (numbered 1, 2, …),
    // each attempt's steps in order, none repeated.
    const started = events.filter((e) => e.type === 'started').map((e) => (e.data as { attempt: number }).attempt)
    expect(first > 1 || (started.length === (final.startedAt === null ? 0 : final.attempt) && started.every((n, i) => n === i + 1)), () => `I2 ${name}: started events for attempts ${started.join(',')} (attempt ${final.attempt})`)
    const failedAttempts = events.filter((e) => e.type === 'attempt_failed').length
    expect(first > 1 || failedAttempts === final.attempt - 1 || (failedAttempts === final.attempt && final.status !== 'complete'), () => `retry ${name}: ${failedAttempts} attempt_failed events for ${final.attempt} attempts, ${final.status}`)
    const attempts: JobEvent[][] = [[]]
    for (const event of events) event.type === 'started' ? attempts.push([event]) : attempts.at(-1)!.push(event)
    for (const type of ['step', 'line']) {
      for (const [a, attemptEvents] of attempts.entries()) {
        const numbers = attemptEvents.filter((e) => e.type === type).map((e) => (e.data as { i: number }).i)
        const from = numbers[0] ?? 1
        expect(numbers.every((n, i) => n === from + i) && (first > 1 || from === 1), () => `I2 ${name}: ${type} events of attempt ${a} out of order or repeated: ${numbers.join(',')}`)
      }
    }
    // What pollers saw is what the log holds.
    for (const [seq, text] of world.seen.get(job.jobId) ?? []) {
      const event = events.find((e) => e.seq === seq)
      if (event) expect(JSON.stringify(event) === text, () => `I2 ${name}: a poller saw event ${seq} as ${text}, the log has ${JSON.stringify(event)}`)
    }
  }

  // ---- 10. durable steps: a stored step never runs again, never two runs at once -----
  await checkSteps(world, finals, expect)

  // ---- 11. the per-account limit: never exceeded, the line served in order, nothing left waiting -----
  checkAccountLimit(world, history, jobs.values(), expect)

  // ---- 9. a job its submit answered 202 is never failed as a submit that died before filing it -----
  // (A 200 replays an Idempotency-Key whose first submit may have died: it answers with the job as it stands.)
  for (const [jobId, accepted] of world.accepted) {
    const final = finals.get(jobId)
    expect(
      accepted.status !== 202 || !final?.errorInternal?.includes('failed by its guard entry'),
      () => `I9 ${A(jobId)}: answered ${accepted.status} to its client, then failed by its guard as a submit that died before filing it`,
    )
  }

  // ---- 4. credits --------------------------------------------------------------
  const refundsDue = await checkCredits(store, history, jobs, finals, expect)

  // ---- 5. a dead worker's job ends failed, its lock freed, pollers see the end --
  expect(world.store.keysUnder('queue/').length === 0, () => `I5 live jobs remain after the quiet phase: ${A(world.store.keysUnder('queue/').join(' '))}`)
  expect(world.store.keysUnder('waiting/').length === 0, () => `I9 waiting jobs remain after the quiet phase: ${A(world.store.keysUnder('waiting/').join(' '))}`)
  for (const job of jobs.values()) {
    const final = finals.get(job.jobId)
    if (!final) continue
    const name = A(job.jobId)
    const claimer = job.claimers.at(-1) ?? null
    const terminalCommit = job.commits.find((c) => isTerminal(c.state.status))?.commit
    if (claimer && !claimer.finished && terminalCommit && terminalCommit.actor !== claimer) {
      expect(
        final.status === 'failed' || (final.status === 'canceled' && world.cancelers.has(job.jobId)),
        () => `I5 ${name}: its worker died (${claimer.death}) and it ended ${final.status}`,
      )
    }
    if (final.lockKey) {
      const lock = world.store.read(`lock/${final.lockKey}`)
      const record = lock ? (JSON.parse(lock.data) as LockRecord) : null
      expect(!(record?.state === 'held' && record.jobId === job.jobId), () => `I5 ${name}: finished ${final.status} but still holds ${final.lockKey}`)
    }
    // A late reader replaying the feed from the start sees the terminal event last.
    if (isTerminal(final.status)) {
      const feed = await readFeed(world.directDeps(), final.account, job.jobId, { after: 0, limit: 1000, waitSeconds: 0 }).catch((error: unknown) =>
        error instanceof Error ? error : new Error(String(error)),
      )
      expect(!(feed instanceof Error) && feed.done && TERMINAL_EVENT_TYPES.has(feed.events.at(-1)?.type ?? ''), () =>
        `I5 ${name}: a replay of the feed does not end with a terminal event${feed instanceof Error ? ` (${feed.message})` : ''}`,
      )
    }
  }
  for (const poller of world.pollers) {
    expect(poller.done && poller.terminalSeen === 1 && TERMINAL_EVENT_TYPES.has(poller.lastSeen?.type ?? ''), () =>
      `I5 ${poller.actor.name}: ${poller.done ? 'done' : 'not done'} after the quiet phase, ${poller.terminalSeen} terminal events seen`,
    )
  }
  for (const fresh of world.freshJobs) {
    const final = fresh.jobId ? finals.get(fresh.jobId) : undefined
    expect(final?.status === 'complete', () => `I5 a new job on ${fresh.account}:res:${fresh.resource} after everything settled ended ${final?.status ?? 'missing'}`)
  }

  // ---- 7. one account never reads or touches another's job ----------------------
  for (const job of jobs.values()) {
    const owner = job.spec?.account ?? job.commits[0]?.state.account
    const other = ACCOUNTS.find((a) => a !== owner)!
    const before = world.store.read(`job/${job.jobId}`)?.version
    for (const ask of [
      () => getJob(world.directDeps(), other, job.jobId),
      () => readFeed(world.directDeps(), other, job.jobId, { after: 0, limit: 10, waitSeconds: 0 }),
      () => cancelJob(world.directDeps(), other, job.jobId),
    ]) {
      const answer = await ask().then(
        () => 'an answer',
        (error: unknown) => (error instanceof ApiError ? error.status : String(error)),
      )
      expect(answer === 404, () => `I7 ${other} asking for ${A(job.jobId)} got ${answer}`)
    }
    expect(world.store.read(`job/${job.jobId}`)?.version === before, () => `I7 ${other}'s cancel changed ${A(job.jobId)}`)
  }
  checks += world.probes.answered404

  // ---- and: one Idempotency-Key, one job ----------------------------------------
  for (const [key, ids] of world.idempotent) {
    expect(ids.size === 1, () => `idempotency ${key} answered with ${ids.size} different jobs: ${[...ids].map(A).join(' ')}`)
  }
  void phases
  return { violations, checks, refundsDue }
}

/** A state without where its log's blobs are: equal for two versions that differ only by a seal. */
function withoutLogLayout(state: JobState) {
  const { firstSeq, lastSeq } = state.log
  return canonical({ ...state, refundFrom: undefined, reservedIn: undefined, log: { firstSeq, lastSeq } })
}

/** After the retention horizon: every finished job and its events are gone, and so are released locks. */
export async function checkRetention(world: World, refundsDue: Map<string, Map<string, number>>): Promise<CheckReport> {
  const violations: string[] = []
  let checks = 0
  const expect = (condition: boolean, message: () => string) => {
    checks++
    if (!condition) violations.push(message())
  }
  // 4, once every reservation has been removed: no charge lost, none refunded twice or wrongly.
  const store = world.directDeps().store
  for (const account of ACCOUNTS) {
    try {
      await expectCreditInvariants(store, account)
      checks++
    } catch (error) {
      violations.push(`I4 ${account} after retention: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`)
    }
    const refunds = new Map<string, number>()
    for (const entry of await readLedger(store, account)) {
      if (entry.type === 'refund' && entry.data.jobId) refunds.set(entry.data.jobId, (refunds.get(entry.data.jobId) ?? 0) + 1)
    }
    const due = refundsDue.get(account) ?? new Map<string, number>()
    for (const [jobId, count] of due) {
      expect((refunds.get(jobId) ?? 0) === count, () => `I4 ${A(jobId)} after retention: ${refunds.get(jobId) ?? 0} refunds, expected ${count}${count === 1 ? ' (credit lost)' : ''}`)
    }
    for (const [jobId] of refunds) expect(due.has(jobId), () => `I4 ${A(jobId)} after retention: refunded but not due`)
  }
  for (const prefix of ['job/', 'events/', 'queue/', 'waiting/']) {
    const left = world.store.keysUnder(prefix)
    expect(left.length === 0, () => `retention: ${left.length} keys left under ${prefix}: ${A(left.slice(0, 5).join(' '))}`)
  }
  const expiry = world.store.keysUnder('expiry/')
  expect(expiry.length === 0, () => `retention: expiry entries left: ${A(expiry.slice(0, 5).join(' '))}`)
  for (const key of world.store.keysUnder('lock/')) {
    const record = JSON.parse(world.store.read(key)!.data) as LockRecord
    expect(record.state === 'held', () => `retention: ${key} left ${record.state}`)
  }
  const money = await checkMoney(world)
  return { violations: [...violations, ...money.violations], checks: checks + money.checks }
}

