/**
 * One simulated run of the whole protocol: accounts, clients, the submit,
 * worker, feed, cancel and reaper functions, all using the real lib code over
 * the simulated store and clock. See protocol.test.ts for the model and the
 * invariants; this file only drives the actors.
 */
import { createAccount, grantCredits } from '../../lib/credits.ts'
import { DEFAULT_SETTINGS, type Deps, type Settings, silentLogger } from '../../lib/deps.ts'
import { ApiError } from '../../lib/errors.ts'
import { MIN_MAX_EVENTS } from '../../lib/events.ts'
import { type Feed, cancelJob, getJob, readFeed } from '../../lib/jobs.ts'
import { reap } from '../../lib/reaper.ts'
import { EXPIRY_BUCKET_MS } from '../../lib/storage/keys.ts'
import { memoryAssetPort } from '../../lib/storage/memory-assets.ts'
import { netlifyBlobsPort } from '../../lib/storage/netlify-blobs.ts'
import { StorageUnavailableError } from '../../lib/storage/port.ts'
import { submitJob } from '../../lib/submit.ts'
import { type JobEvent, TERMINAL_EVENT_TYPES, isTerminal } from '../../lib/types.ts'
import { runJob } from '../../lib/worker.ts'
import { type CheckReport, checkInvariants, checkRetention } from './invariants.ts'
import { simKinds } from './kinds.ts'
import { type Actor, type ActorKind, type Outcome, Rng, Scheduler, type SimStats, installDeterminism } from './scheduler.ts'
import { simBlobsStore } from './sim-sdk.ts'
import { AtomicStore, aliasIds } from './sim-store.ts'

/** What fast-check generates (and shrinks). Percentages keep the shrinking readable. */
export interface ScenarioParams {
  seed: number
  clients: number
  resources: number
  jobsPerClient: number
  /** Opening balance of each account. */
  credits: number
  faultBeforePct: number
  faultAfterPct: number
  delayPct: number
  /** Chance that a worker invocation dies between two of its storage calls. */
  workerCrashPct: number
  /** Same for submit, cancel, feed and reaper invocations. */
  functionCrashPct: number
  duplicatePct: number
  /** Chance that each of a job's first two worker invocations fails before doing anything (so it starts late, on a retry). */
  lateStartPct: number
  cancelPct: number
  idempotencyPct: number
  /** Per mille, per step: the whole system stalls (clock jump mid-flight). */
  stallPermille: number
  /** Chance that the worker call is delivered (the worker starts and claims) but its answer is lost seconds later. */
  invokeLostPct: number
  /** Chance that a client gives up waiting for a submit (10 or 30 s) and retries while the first request still runs. */
  clientTimeoutPct: number
  /** Chance that a client comes back around the hour mark, when its account's reservations are pruned (multi-entry ledger writes). */
  lateClientPct: number
  /** Chance that a submit's function instance dies right after its charge landed (deploy, out of memory): a charge whose job never comes to exist. */
  dieAfterChargePct: number
  /** Credit grants an operator makes to each account around the hour mark, seconds apart: they race with the reaper's pruning. */
  operatorGrants: number
}

export const ACCOUNTS = ['acct-a', 'acct-b'] as const
export const REAPER_PERIOD_MS = 5 * 60_000
/** Netlify's limits: synchronous functions 60 s, scheduled 30 s, background 15 min. */
export const TIME_LIMIT = { submit: 60_000, cancel: 60_000, feed: 60_000, probe: 60_000, admin: 60_000, reaper: 30_000, worker: 15 * 60_000 }
/** Netlify retries a background invocation that failed after 1 and then 3 minutes. */
export const BACKGROUND_RETRY_DELAYS = [60_000, 180_000]

export const SETTINGS: Settings = { ...DEFAULT_SETTINGS, maxEvents: MIN_MAX_EVENTS }

export interface AcceptedJob {
  jobId: string
  account: string
  client: number
  status: 200 | 202
}

export interface PollerRecord {
  jobId: string
  account: string
  actor: Actor
  done: boolean
  terminalSeen: number
  lastSeen: JobEvent | null
}

export interface RunResult {
  params: ScenarioParams
  stats: SimStats
  violations: string[]
  checks: number
  trace: string[]
  jobs: number
  coverage: Map<string, number>
  /** The final store, for debugging and for tests that look further. */
  store: AtomicStore
}

export class World {
  readonly sim: Scheduler
  readonly store: AtomicStore
  readonly settings = SETTINGS
  readonly accepted = new Map<string, AcceptedJob>()
  /** account + Idempotency-Key → job ids the client was given for it. */
  readonly idempotent = new Map<string, Set<string>>()
  readonly pollers: PollerRecord[] = []
  readonly cancelers = new Set<string>()
  readonly workers = new Map<string, Actor[]>()
  /** Every event any poller saw, per job and seq: all sightings must agree. */
  readonly seen = new Map<string, Map<number, string>>()
  readonly violations: string[] = []
  /** Invariant 7 during the run: another account's requests answered 404. */
  readonly probes = { answered404: 0 }
  readonly freshJobs: { account: string; resource: string; jobId: string | null }[] = []
  /** Every job id a submit made (answered or not), with the Idempotency-Key it carried. */
  readonly submitted = new Map<string, { account: string; idempotencyKey: string | null }>()
  /** Jobs whose submit answered 503 worker_unavailable: the client was told they could not be started. */
  readonly refused = new Set<string>()
  /** The job each submit invocation asked the worker to run. */
  readonly invoked = new Map<Actor, string>()
  /** Submit invocations fated to die right after their charge lands. */
  readonly dieAfterCharge = new Set<Actor>()
  /** How often each interesting path was taken, for the summary. */
  readonly coverage = new Map<string, number>()
  crashes = true
  private idCounter = 0
  readonly rng: Rng

  readonly params: ScenarioParams

  constructor(params: ScenarioParams, trace: boolean) {
    this.params = params
    this.sim = new Scheduler({
      seed: params.seed,
      faults: { before: params.faultBeforePct / 100, after: params.faultAfterPct / 100, delay: params.delayPct / 100 },
      stallRate: params.stallPermille / 1000,
      // A stall past the heartbeat timeout, or as long as a Netlify retry delay.
      stallJumps: [SETTINGS.heartbeatTimeoutMs, ...BACKGROUND_RETRY_DELAYS],
      orphanLandRate: 0.3,
      trace,
    })
    this.rng = this.sim.rng
    this.store = new AtomicStore(this.sim)
  }

  readonly ids = (prefix: string) => `${prefix}_simjob00${(++this.idCounter).toString(16).padStart(32, '0')}`

  count(what: string) {
    this.coverage.set(what, (this.coverage.get(what) ?? 0) + 1)
  }

  violation(message: string) {
    this.violations.push(message)
    this.sim.log(`VIOLATION ${message}`)
  }

  deps(actor: Actor): Deps {
    return {
      // The real Blobs adapter over a simulated SDK: its read-backs are steps too.
      store: netlifyBlobsPort(
        simBlobsStore(this.sim, this.store, actor, (key) => {
          // Dies before its next call: the charge stands, its job will never exist.
          if (key.startsWith('account/') && this.dieAfterCharge.has(actor)) actor.crashAfterOps = actor.opsRun
        }),
      ),
      // Files: no simulated kind saves any.
      assets: memoryAssetPort(),
      clock: this.sim.clockFor(actor),
      ids: this.ids,
      kinds: simKinds((ms) => this.sim.sleep(actor, ms)),
      settings: this.settings,
      // The POST to the background function: it can fail before or after it was delivered.
      invokeWorker: (jobId) => this.invoke(actor, jobId),
      log: silentLogger,
    }
  }

  /** Direct, fault-free, unscheduled deps for setup and checks. */
  directDeps(): Deps {
    return { ...this.deps(this.sim.actors[0]!), clock: { now: () => this.sim.now, sleep: async () => {} } }
  }

  /** One function invocation: capped by Netlify's time limit, maybe fated to crash. */
  fn<T>(kind: Exclude<ActorKind, 'client' | 'worker'>, name: string, body: (actor: Actor) => Promise<T>, jobId?: string) {
    const crash = this.crashes && kind !== 'probe' && this.rng.chance(this.params.functionCrashPct / 100) ? this.rng.int(0, 12) : null
    const { actor, outcome } = this.sim.spawn({ name, kind, timeLimitMs: TIME_LIMIT[kind], crashAfterOps: crash, ...(jobId ? { jobId } : {}) }, body)
    if (kind === 'submit' && this.crashes && this.rng.chance(this.params.dieAfterChargePct / 100)) this.dieAfterCharge.add(actor)
    return outcome
  }

  /**
   * The POST to the background function: it can fail before or after it was
   * delivered; or it is delivered (the worker starts and claims the job) and
   * its answer is lost seconds later.
   */
  private invoke(actor: Actor, jobId: string): Promise<void> {
    this.invoked.set(actor, jobId)
    const label = () => `invoke worker ${aliasIds(jobId)}`
    if (!this.sim.auto && this.crashes && this.rng.chance(this.params.invokeLostPct / 100)) {
      return this.sim.call(actor, label, {
        landIn: 0,
        answerIn: this.rng.int(2_000, 30_000),
        fault: 'invoke-lost',
        land: () => (this.dispatch(jobId), 'delivered'),
        run: () => {
          this.dispatch(jobId)
          return { answer: { error: new Error('simulated: the worker call timed out after it was delivered') }, note: 'delivered FAULT answer lost' }
        },
      })
    }
    return this.sim.op(actor, label, true, () => this.dispatch(jobId))
  }

  /** Netlify accepted the background call: one delivery, rarely none, sometimes a duplicate. */
  private dispatch(jobId: string) {
    if (this.crashes && this.rng.chance(0.01)) return this.sim.log(`delivery of ${aliasIds(jobId)} lost by the platform`)
    this.deliver(jobId, 0, this.sim.now + this.rng.int(0, 300))
    if (this.rng.chance(this.params.duplicatePct / 100)) this.deliver(jobId, 0, this.sim.now + this.rng.int(0, 90_000))
  }

  /** A worker invocation; if it throws or dies, Netlify retries it at +1 and +3 minutes. */
  deliver(jobId: string, attempt: number, startAt: number) {
    const crash = this.crashes && this.rng.chance(this.params.workerCrashPct / 100) ? this.rng.int(0, 30) : null
    const list = this.workers.get(jobId) ?? []
    this.workers.set(jobId, list)
    const platformError = this.crashes && attempt < 2 && this.rng.chance(this.params.lateStartPct / 100)
    const { actor, outcome } = this.sim.spawn(
      { name: `worker(${aliasIds(jobId)}#${list.length + 1})`, kind: 'worker', startAt, timeLimitMs: TIME_LIMIT.worker, crashAfterOps: crash, jobId },
      async (self) => {
        if (platformError) throw new Error('simulated: the invocation failed before it ran (cold start, deploy)')
        return runJob(this.deps(self), jobId)
      },
    )
    list.push(actor)
    void outcome.then((result) => {
      this.count(`worker ${result.value ?? (result.died ? 'died' : 'threw')}`)
      if (result.value) return this.sim.log(`${actor.name} returned ${result.value}`)
      this.sim.log(`${actor.name} ${result.died ? `died (${result.died})` : `threw ${describe(result.error)}`}`)
      if (attempt < BACKGROUND_RETRY_DELAYS.length) this.deliver(jobId, attempt + 1, this.sim.now + BACKGROUND_RETRY_DELAYS[attempt]!)
    })
  }
}

const describe = (error: unknown) =>
  error instanceof ApiError ? `${error.status} ${error.code}` : error instanceof Error ? `${error.name}: ${error.message}` : String(error)

const transient = (outcome: Outcome<unknown>) =>
  outcome.died !== undefined ||
  outcome.error instanceof StorageUnavailableError ||
  (outcome.error instanceof ApiError && (outcome.error.status === 503 || outcome.error.code === 'idempotency_in_progress' || outcome.error.code === 'job_busy'))

// ---- clients ---------------------------------------------------------------

interface PlannedJob {
  thinkMs: number
  body: { kind: string; input: Record<string, unknown>; clientJobId?: string }
  idempotencyKey: string | null
  /** On 409 resource_locked, come back after this long (maybe past the lock TTL). */
  comeBackMs: number | null
  cancel: boolean
  pollers: number
  /** The client stops waiting for the submit's answer after this long (and retries), or waits for it. */
  timeoutMs: number | null
}

function planJobs(world: World, client: number): PlannedJob[] {
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
    const late = rng.chance(params.lateClientPct / 100)
    return {
      // A late client comes back around the hour, as the reaper prunes the account's first reservations.
      thinkMs: late ? rng.int(55 * 60_000, 70 * 60_000) : rng.chance(0.15) ? rng.int(5 * 60_000, 20 * 60_000) : rng.chance(0.3) ? rng.int(0, 1_000) : rng.int(0, 30_000),
      body: rng.chance(0.4) ? { ...body, clientJobId: `cj-${rng.int(0, 2)}` } : body,
      idempotencyKey: rng.chance(params.idempotencyPct / 100) ? `idem-${client}-${j}` : null,
      // Sometimes just past the lock TTL (16 min), when the first job may be alive only if it started late.
      comeBackMs: rng.chance(0.5) ? rng.pick([60_000, 4 * 60_000, 9 * 60_000, 16 * 60_000 + rng.int(0, 180_000)]) : null,
      cancel: rng.chance(params.cancelPct / 100),
      pollers: rng.chance(0.2) ? 2 : 1,
      timeoutMs: rng.chance(params.clientTimeoutPct / 100) ? rng.pick([10_000, 30_000]) : null,
    }
  })
}

async function client(world: World, self: Actor, index: number, account: string, jobs: PlannedJob[]) {
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
    deps.ids = (prefix) => {
      const id = ids(prefix)
      if (prefix === 'job') world.submitted.set(id, { account, idempotencyKey })
      return id
    }
    try {
      return await submitJob(deps, account, body, idempotencyKey)
    } catch (error) {
      const jobId = world.invoked.get(fn)
      if (error instanceof ApiError && error.code === 'worker_unavailable' && jobId) world.refused.add(jobId)
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
async function topUp(world: World, self: Actor, account: string) {
  for (let g = 0; g < world.params.operatorGrants; g++) {
    await world.sim.sleep(self, world.rng.int(0, 600))
    const outcome = await world.fn('admin', `grant(${account})`, (fn) => {
      const deps = world.deps(fn)
      return grantCredits(deps.store, deps.clock, account, 1, 'top-up')
    })
    if (outcome.error && !transient(outcome)) world.violation(`a grant to ${account} threw ${describe(outcome.error)}`)
  }
}

// ---- the run ---------------------------------------------------------------

/** Runs until `until` even when everyone waits, so the reaper's cron keeps firing. */
async function keepTime(world: World, until: number) {
  const { sim } = world
  sim.spawn({ name: 'operator', kind: 'client' }, async (self) => {
    while (sim.now < until) await sim.sleep(self, 60_000)
  })
  await sim.run({ stopAt: until + 60_000 })
}

export async function runScenario(
  params: ScenarioParams,
  options: { trace?: boolean; /** Damages the outcome before the checks (to show they catch it). */ tamper?: (world: World) => void } = {},
): Promise<RunResult> {
  const world = new World(params, options.trace ?? true)
  const { sim } = world
  const restore = installDeterminism(sim)
  let report: CheckReport = { violations: [], checks: 0 }
  try {
    sim.auto = true
    for (const account of ACCOUNTS) await createAccount(world.directDeps().store, world.directDeps().clock, account, params.credits)
    sim.auto = false

    for (let c = 0; c < params.clients; c++) {
      const account = ACCOUNTS[c % ACCOUNTS.length]!
      const jobs = planJobs(world, c)
      sim.spawn({ name: `client(c${c})`, kind: 'client' }, (self) => client(world, self, c, account, jobs))
    }
    const origin = sim.now
    const cron = sim.cron('reaper', REAPER_PERIOD_MS, sim.now + world.rng.int(0, REAPER_PERIOD_MS), () => {
      void world.fn('reaper', 'reaper', (fn) => reap(world.deps(fn))).then((outcome) => {
        if (outcome.error && !transient(outcome)) world.violation(`reaper threw ${describe(outcome.error)}`)
      })
      // Around the hour, as the reaper prunes the first reservations, a billing run tops up each account.
      const elapsed = sim.now - origin
      if (params.operatorGrants > 0 && elapsed >= 55 * 60_000 && elapsed <= 80 * 60_000) {
        for (const account of ACCOUNTS) sim.spawn({ name: `operator(${account})`, kind: 'client' }, (self) => topUp(world, self, account))
      }
    })

    // Phase 1: everything at once, with faults, crashes and stalls.
    const started = sim.now
    await sim.run({ stopAt: started + 4 * 3600_000 })

    // Phase 2: quiet. No faults, no crashes; the reaper keeps running on its
    // schedule; pollers keep polling. Past one lock TTL plus one reaper period
    // (plus one more period for the first run to come), nothing may be live.
    sim.faults = { before: 0, after: 0, delay: 0 }
    sim.stallRate = 0
    world.crashes = false
    const quietFrom = sim.now
    const horizon = quietFrom + world.settings.lockTtlMs + 2 * REAPER_PERIOD_MS
    sim.log('--- quiet phase: no faults, no crashes ---')
    await keepTime(world, horizon)

    // Phase 3: a new job on every resource that was used can start and finish.
    sim.log('--- fresh jobs on every used resource ---')
    const used = new Set<string>()
    for (const commit of world.store.history) {
      if (commit.key.startsWith('lock/')) used.add(commit.key.slice('lock/'.length))
    }
    sim.auto = true
    for (const account of ACCOUNTS) await grantCredits(world.directDeps().store, world.directDeps().clock, account, 10, 'fresh jobs')
    sim.auto = false
    for (const lockKey of [...used].sort()) {
      const [account, , resource] = lockKey.split(':') as [string, string, string]
      const fresh: World['freshJobs'][number] = { account, resource, jobId: null }
      world.freshJobs.push(fresh)
      sim.spawn({ name: `fresh(${lockKey})`, kind: 'client' }, async () => {
        const outcome = await world.fn('submit', `submit(fresh ${lockKey})`, (fn) =>
          submitJob(world.deps(fn), account, { kind: 'sim_task', input: { resource, steps: 1, stepMs: 0, fail: 'none', failAt: 1 } }, null),
        )
        if (outcome.value) fresh.jobId = outcome.value.body.jobId
        else world.violation(`a new job on ${lockKey} after everything settled was refused: ${outcome.died ?? describe(outcome.error)}`)
      })
    }
    await keepTime(world, sim.now + 30 * 60_000)
    cron.stop()

    sim.auto = true
    options.tamper?.(world)
    report = await checkInvariants(world, { quietFrom, horizon })
    sim.auto = false

    // Phase 4: retention. Far ahead, the reaper deletes every finished job.
    sim.now += world.settings.retentionMs + 3 * EXPIRY_BUCKET_MS
    sim.log('--- past retention ---')
    for (let run = 0; run < 2; run++) {
      void world.fn('reaper', 'reaper(retention)', (fn) => reap(world.deps(fn)))
      await sim.run()
      sim.now += REAPER_PERIOD_MS
    }
    sim.auto = true
    const retention = await checkRetention(world, report.refundsDue ?? new Map())
    report = { violations: [...report.violations, ...retention.violations], checks: report.checks + retention.checks }
  } catch (error) {
    world.violation(`the run itself failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  } finally {
    restore()
    sim.auto = false
  }
  return {
    params,
    stats: sim.stats,
    violations: [...world.violations, ...report.violations],
    checks: report.checks,
    trace: sim.trace,
    jobs: world.store.history.filter((c) => c.op === 'create' && c.key.startsWith('queue/')).length,
    coverage: world.coverage,
    store: world.store,
  }
}
