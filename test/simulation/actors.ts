/**
 * The simulated people and platform around the functions: clients that
 * submit (with timeouts and retries), pollers that follow the feed and probe
 * the other account, cancelers, and an operator's credit grants.
 */
import { grantCredits } from '../../lib/credits/index.ts'
import { ApiError } from '../../lib/core/errors.ts'
import { type Feed, cancelJob, getJob, readFeed } from '../../lib/jobs/read.ts'
import { submitJob } from '../../lib/jobs/submit.ts'
import { TERMINAL_EVENT_TYPES, isTerminal } from '../../lib/core/types.ts'
import type { Actor, Outcome } from './scheduler.ts'
import { aliasIds } from './sim-store.ts'
import { ACCOUNTS, type PollerRecord, type World, describe, transient } from './world.ts'

// ---- clients ---------------------------------------------------------------

interface PlannedJob {
  thinkMs: number
  body: { kind: string; input: Record<string, unknown>; clientJobId?: string; delaySeconds?: number; onBusy?: 'queue' }
  idempotencyKey: string | null
  /** On 409 resource_locked, come back after this long (maybe past the lock TTL). */
  comeBackMs: number | null
  cancel: boolean
  pollers: number
  /** The client stops waiting for the submit's answer after this long (and retries), or waits for it. */
  timeoutMs: number | null
}

export function planJobs(world: World, client: number): PlannedJob[] {
  const { rng, params } = world
  return Array.from({ length: params.jobsPerClient }, (_, j) => {
    const resource = `r${rng.int(0, params.resources - 1)}`
    const roll = rng.next()
    const steps = rng.int(1, 4)
    const task = {
      resource,
      steps,
      stepMs: rng.pick([0, 200, 2_000, 20_000]),
      fail: rng.pick(['none', 'none', 'none', 'public', 'internal'] as const),
      failAt: rng.int(1, steps),
    }
    const body =
      roll < 0.45
        ? { kind: 'sim_task', input: task }
        : roll < 0.65
          ? { kind: 'sim_free', input: task }
          : roll < 0.82
            ? { kind: 'sim_hang', input: { resource, tickMs: rng.pick([2_000, 7_000, 20_000]) } }
            : { kind: 'sim_chatty', input: { resource, events: rng.pick([5, 12, 25, 120, 260]) } }
    // Work shared under one client job id at two prices, meant to fail: a reservation with several
    // payers that ends unearned, refunded in one multi-entry account write.
    if (params.sharedWorkPct && rng.chance(params.sharedWorkPct / 100)) {
      return {
        thinkMs: rng.int(0, 20_000),
        body: { kind: rng.pick(['sim_free', 'sim_dear']), input: { ...task, fail: 'public' }, clientJobId: 'cj-shared' },
        idempotencyKey: null,
        comeBackMs: null,
        cancel: false,
        pollers: 1,
        timeoutMs: null,
      }
    }
    // Drawn only in runs that ask for it, so other seeds replay as before.
    if (params.retryPct && rng.chance(params.retryPct / 100)) {
      const attempts = Array.from({ length: rng.int(1, 4) }, () => rng.pick(['ok', 'retryable', 'retryable', 'later', 'internal', 'final'] as const))
      const flaky = { kind: 'sim_flaky', input: { resource, steps, stepMs: task.stepMs, attempts, laterMs: rng.pick([15_000, 90_000, 400_000]) } }
      return {
        thinkMs: rng.int(0, 30_000),
        body: rng.chance(0.3) ? { ...flaky, clientJobId: `cj-${rng.int(0, 2)}` } : flaky,
        idempotencyKey: rng.chance(params.idempotencyPct / 100) ? `idem-${client}-${j}` : null,
        comeBackMs: rng.chance(0.5) ? rng.pick([60_000, 4 * 60_000, 16 * 60_000]) : null,
        cancel: rng.chance(params.cancelPct / 100),
        pollers: 1,
        timeoutMs: rng.chance(params.clientTimeoutPct / 100) ? rng.pick([10_000, 30_000]) : null,
      }
    }
    // Drawn only in runs that ask for it, so other seeds replay as before.
    if (params.stepsPct && rng.chance(params.stepsPct / 100)) {
      const steps = rng.int(2, 10)
      // Odd counts run in two parallel branches; derived, not drawn, so seeds replay as before.
      const stepped = { kind: 'sim_steps', input: { resource, steps, stepMs: rng.pick([0, 2_000, 6_000, 20_000]), branches: 1 + (steps % 2) } }
      return {
        thinkMs: rng.int(0, 30_000),
        body: rng.chance(0.3) ? { ...stepped, clientJobId: `cj-${rng.int(0, 2)}` } : stepped,
        idempotencyKey: rng.chance(params.idempotencyPct / 100) ? `idem-${client}-${j}` : null,
        comeBackMs: rng.chance(0.5) ? rng.pick([60_000, 4 * 60_000, 16 * 60_000]) : null,
        cancel: rng.chance(params.cancelPct / 100),
        pollers: 1,
        timeoutMs: rng.chance(params.clientTimeoutPct / 100) ? rng.pick([10_000, 30_000]) : null,
      }
    }
    const late = rng.chance(params.lateClientPct / 100)
    // Drawn only in runs that ask for it, so other seeds replay as before.
    const delayed = params.delayedPct ? rng.chance(params.delayedPct / 100) : false
    const dated = delayed ? { ...body, delaySeconds: rng.pick([1, 45, 90, 600]) } : body
    const timed = params.queuedPct && rng.chance(params.queuedPct / 100) ? { ...dated, onBusy: 'queue' as const } : dated
    return {
      // A late client comes back around the hour, as the account's first reservations expire.
      thinkMs: late ? rng.int(55 * 60_000, 70 * 60_000) : rng.chance(0.15) ? rng.int(5 * 60_000, 20 * 60_000) : rng.chance(0.3) ? rng.int(0, 1_000) : rng.int(0, 30_000),
      body: rng.chance(0.4) ? { ...timed, clientJobId: `cj-${rng.int(0, 2)}` } : timed,
      idempotencyKey: rng.chance(params.idempotencyPct / 100) ? `idem-${client}-${j}` : null,
      // Sometimes just past the lock TTL (16 min), when the first job may be alive only if it started late.
      comeBackMs: rng.chance(0.5) ? rng.pick([60_000, 4 * 60_000, 9 * 60_000, 16 * 60_000 + rng.int(0, 180_000)]) : null,
      cancel: rng.chance(params.cancelPct / 100),
      pollers: rng.chance(0.2) ? 2 : 1,
      timeoutMs: rng.chance(params.clientTimeoutPct / 100) ? rng.pick([10_000, 30_000]) : null,
    }
  })
}

export async function client(world: World, self: Actor, index: number, account: string, jobs: PlannedJob[]) {
  const { sim, rng } = world
  for (const job of jobs) {
    await sim.sleep(self, job.thinkMs)
    let lockedRetries = 0
    for (let attempt = 0; attempt < 6; attempt++) {
      const outcome = await waitAtMost(world, self, job.timeoutMs, submit(world, account, job.body, job.idempotencyKey, `submit(c${index})`))
      if (outcome.value) {
        const { jobId } = outcome.value.body
        sim.log(`client c${index} got ${outcome.value.status} for ${aliasIds(jobId)}`)
        if (outcome.value.replayed) world.count('idempotent replay')
        if (job.idempotencyKey) {
          const key = `${account}/${job.idempotencyKey}`
          world.idempotent.set(key, (world.idempotent.get(key) ?? new Set()).add(jobId))
        }
        if (!world.accepted.has(jobId)) {
          world.accepted.set(jobId, { jobId, account, client: index, status: outcome.value.status })
          for (let p = 0; p < job.pollers; p++) startPoller(world, jobId, account)
          if (job.cancel) {
            world.cancelers.add(jobId)
            sim.spawn({ name: `canceler(${aliasIds(jobId)})`, kind: 'client' }, (me) => canceler(world, me, jobId, account))
          }
        }
        break
      }
      const { error } = outcome
      sim.log(`client c${index} submit failed: ${outcome.died ? `function died (${outcome.died})` : describe(error)}`)
      if (error instanceof ApiError) world.count(`submit ${error.status} ${error.code}`)
      if (error instanceof ApiError && error.code === 'resource_locked') {
        if (job.comeBackMs === null || lockedRetries++ >= 3) break
        await sim.sleep(self, job.comeBackMs)
        continue
      }
      if (error instanceof ApiError && error.status === 402) break
      if (!transient(outcome)) {
        world.violation(`submit by c${index} answered ${describe(error)} for a valid request (${JSON.stringify(job.body)})`)
        break
      }
      // A client without an Idempotency-Key sometimes retries anyway (a new job), sometimes gives up.
      if (!job.idempotencyKey && rng.chance(0.5)) break
      await sim.sleep(self, rng.pick([500, 5_000, 35_000]))
    }
  }
}

/** One submit invocation; remembers the job id it made, and whether it answered "could not be started". */
function submit(world: World, account: string, body: PlannedJob['body'], idempotencyKey: string | null, name: string) {
  return world.fn('submit', name, async (fn) => {
    const deps = world.deps(fn)
    const ids = deps.ids
    /** The job this submit made: with queueing, a submit's release can also start (invoke) the next job in line. */
    let made: string | null = null
    deps.ids = (prefix) => {
      const id = ids(prefix)
      if (prefix === 'job') {
        world.submitted.set(id, { account, idempotencyKey })
        made = id
      }
      return id
    }
    try {
      const answer = await submitJob(deps, account, body, idempotencyKey)
      if (world.invokeFailed.has(fn)) world.count('worker call failed after its worker claimed: answered 202')
      return answer
    } catch (error) {
      if (error instanceof ApiError && /took it over/.test(error.message)) world.count('a slow request lost its Idempotency-Key to a retry')
      if (error instanceof ApiError && error.code === 'worker_unavailable' && made) world.refused.add(made)
      throw error
    }
  })
}

/** A client's HTTP call with a timeout: past it, the client stops waiting; the function runs on. */
async function waitAtMost<T>(world: World, self: Actor, timeoutMs: number | null, call: Promise<Outcome<T>>): Promise<Outcome<T>> {
  if (timeoutMs === null) return call
  const stop = new AbortController()
  const timer = world.sim.sleep(self, timeoutMs, stop.signal).then((): Outcome<T> => ({ died: `the client gave up waiting after ${timeoutMs / 1000}s` }))
  const first = await Promise.race([call, timer])
  stop.abort()
  if (first.died?.startsWith('the client gave up')) world.count('client timed out a submit')
  return first
}

function startPoller(world: World, jobId: string, account: string) {
  const record: PollerRecord = { jobId, account, actor: null!, done: false, terminalSeen: 0, lastSeen: null }
  const { actor } = world.sim.spawn({ name: `poller(${aliasIds(jobId)})`, kind: 'client', jobId }, (me) => poller(world, me, record))
  record.actor = actor
  world.pollers.push(record)
}

/** Follows the event feed with a cursor until `done`, checking every answer; probes the other account. */
async function poller(world: World, self: Actor, record: PollerRecord) {
  const { sim, rng } = world
  const { jobId, account } = record
  let after = 0
  let pause = 1_000
  for (;;) {
    const waitSeconds = rng.chance(0.3) ? rng.int(1, 20) : 0
    const limit = rng.pick([1, 3, 10, 100])
    const outcome = await world.fn('feed', `feed(${aliasIds(jobId)})`, (fn) => readFeed(world.deps(fn), account, jobId, { after, limit, waitSeconds }))
    if (outcome.value) {
      checkFeed(world, record, after, outcome.value)
      if (outcome.value.done) {
        record.done = true
        return
      }
      after = outcome.value.next
      pause = outcome.value.events.length > 0 ? 1_000 : Math.min(pause * 2, 60_000)
    } else if (!transient(outcome)) {
      world.violation(`feed of ${aliasIds(jobId)} for its own account answered ${describe(outcome.error)}`)
      return
    }
    if (rng.chance(0.25)) await probe(world, jobId, account)
    await sim.sleep(self, pause)
  }
}

function checkFeed(world: World, record: PollerRecord, after: number, feed: Feed) {
  const name = `feed of ${aliasIds(record.jobId)} after=${after}`
  const events = feed.events
  const first = feed.truncated ? feed.firstSeq : after + 1
  events.forEach((event, i) => {
    if (event.seq !== first + i) world.violation(`${name}: event ${i} has seq ${event.seq}, expected ${first + i} (gap or repeat)`)
  })
  if (feed.next !== (events.at(-1)?.seq ?? after)) world.violation(`${name}: next ${feed.next} is not the last seq returned`)
  const sightings = world.seen.get(record.jobId) ?? new Map<number, string>()
  world.seen.set(record.jobId, sightings)
  for (const event of events) {
    const text = JSON.stringify(event)
    const before = sightings.get(event.seq)
    if (before !== undefined && before !== text) world.violation(`${name}: event ${event.seq} changed between reads: ${before} then ${text}`)
    sightings.set(event.seq, text)
    if (record.terminalSeen > 0) world.violation(`${name}: event ${event.seq} (${event.type}) after the terminal event`)
    if (TERMINAL_EVENT_TYPES.has(event.type)) record.terminalSeen++
    record.lastSeen = event
  }
  if (feed.done && (record.terminalSeen !== 1 || !isTerminal(feed.status as never))) {
    world.violation(`${name}: done with status ${feed.status} but ${record.terminalSeen} terminal events seen`)
  }
  if (events.some((e) => TERMINAL_EVENT_TYPES.has(e.type)) && !feed.done) world.violation(`${name}: terminal event returned but not done`)
}

/** Invariant 7 while things happen: another account asking for this job gets 404, as if it did not exist. */
async function probe(world: World, jobId: string, owner: string) {
  const other = ACCOUNTS.find((a) => a !== owner)!
  const what = world.rng.pick(['status', 'feed', 'cancel'] as const)
  const outcome = await world.fn('probe', `probe(${other}→${aliasIds(jobId)} ${what})`, (fn): Promise<unknown> => {
    const deps = world.deps(fn)
    if (what === 'status') return getJob(deps, other, jobId)
    if (what === 'feed') return readFeed(deps, other, jobId, { after: 0, limit: 10, waitSeconds: 0 })
    return cancelJob(deps, other, jobId)
  })
  if (outcome.error instanceof ApiError && outcome.error.status === 404) world.probes.answered404++
  else if (transient(outcome) && !(outcome.error instanceof ApiError)) world.count('probe inconclusive (storage error)')
  else world.violation(`account ${other} asking for ${aliasIds(jobId)} (${what}) got ${outcome.value ? 'an answer' : describe(outcome.error)}, not 404`)
}

async function canceler(world: World, self: Actor, jobId: string, account: string) {
  const { sim, rng } = world
  await sim.sleep(self, rng.chance(0.3) ? rng.int(0, 2_000) : rng.int(2_000, 240_000))
  for (let attempt = 0; attempt < 5; attempt++) {
    const outcome = await world.fn('cancel', `cancel(${aliasIds(jobId)})`, (fn) => cancelJob(world.deps(fn), account, jobId), jobId)
    if (outcome.value) {
      sim.log(`cancel of ${aliasIds(jobId)} answered ${outcome.value.status}`)
      world.count(`cancel ${outcome.value.status}`)
      if (outcome.value.status === 200 || outcome.value.status === 202) world.noteCancelAnswered(jobId)
      // Asked a running job to stop: sometimes ask again much later (its worker may be gone).
      if (outcome.value.status === 202 && rng.chance(0.4)) {
        await sim.sleep(self, rng.int(30_000, 300_000))
        continue
      }
      return
    }
    if (outcome.error instanceof ApiError && outcome.error.code === 'job_finished') return
    if (!transient(outcome)) return world.violation(`cancel of ${aliasIds(jobId)} by its own account answered ${describe(outcome.error)}`)
    await sim.sleep(self, rng.int(1_000, 20_000))
  }
}

/** An operator's grants to one account, under a second apart (single-entry ledger writes racing with the reaper's). */
export async function topUp(world: World, self: Actor, account: string) {
  for (let g = 0; g < world.params.operatorGrants; g++) {
    await world.sim.sleep(self, world.rng.int(0, 600))
    const outcome = await world.fn('admin', `grant(${account})`, (fn) => {
      const deps = world.deps(fn)
      return grantCredits(deps.store, deps.clock, account, 1, 'top-up')
    })
    if (outcome.error && !transient(outcome)) world.violation(`a grant to ${account} threw ${describe(outcome.error)}`)
  }
}

