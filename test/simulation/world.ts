/**
 * The world of one simulated run: its parameters, the scheduler and store,
 * what the actors observed (for the checks), and the dependencies each
 * function invocation gets — the real Blobs adapter over the simulated SDK,
 * and a worker call that Netlify delivers at least once.
 */
import { DEFAULT_SETTINGS, type Deps, type Settings, silentLogger } from '../../lib/core/deps.ts'
import { ApiError } from '../../lib/core/errors.ts'
import { MIN_MAX_EVENTS } from '../../lib/events/log.ts'
import { memoryAssetPort } from '../../lib/storage/memory-assets.ts'
import { netlifyBlobsPort } from '../../lib/storage/netlify-blobs.ts'
import { StorageUnavailableError } from '../../lib/storage/port.ts'
import type { JobEvent } from '../../lib/core/types.ts'
import { runJob } from '../../lib/jobs/worker.ts'
import { stepKey } from '../../lib/jobs/steps.ts'
import { simKinds } from './kinds.ts'
import { type Actor, type ActorKind, type Outcome, Rng, Scheduler, type SimStats } from './scheduler.ts'
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
  /** Chance that a client comes back around the hour mark, when its account's first reservations expire. */
  lateClientPct: number
  /** Chance that a submit's function instance dies right after its charge landed (deploy, out of memory): a charge whose job never comes to exist. */
  dieAfterChargePct: number
  /** Credit grants an operator makes to each account around the hour mark, seconds apart: they race with charges and refunds. */
  operatorGrants: number
  /** Chance that a job is failing work shared under one client job id at two prices (a reservation with several payers). */
  sharedWorkPct?: number
  /** Chance that a job is submitted with a delayed start (`delaySeconds`); the dispatcher runs every minute when set. */
  delayedPct?: number
  /** Chance that a job is of a kind with a retry policy whose attempts fail in planned ways; the dispatcher runs every minute when set. */
  retryPct?: number
  /** Chance that a submit chooses to wait in its resource's line (`onBusy: "queue"`) rather than be refused. */
  queuedPct?: number
  /** Chance that a job is of a kind made of durable steps; the invocation limit is short and the dispatcher runs every minute when set. */
  stepsPct?: number
  /** ACCOUNT_MAX_RUNNING for the run; the dispatcher runs every minute when set. */
  accountLimit?: number
  /** An operator changes the limit mid-run: raised by one, or unset (the minute of phase 1 it happens at). */
  accountLimitChange?: { to: 'raised' | 'unset'; atMinute: number }
}

/** Runs with steps: a short invocation limit, so jobs are continued in fresh invocations several times. */
export const STEPS_INVOCATION_LIMIT_MS = 15_000

/** One run of a step's fn (sim_steps): by whom, whether it returned, and whether the step was stored when it started. */
export interface StepRun {
  id: string
  actor: Actor
  startStep: number
  done: boolean
  storedAtStart: boolean
  /** Started by a worker invoked after a cancel of the job was answered 200 or 202. */
  afterCancel: boolean
  /** Runs of the same step in flight (started, not returned) by actors still alive, or returned, when this one started. */
  concurrentWith: string[]
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
  readonly settings: Settings
  /** The commit number from which a changed account limit applies (accountLimitChange), else null. */
  accountLimitChangedAt: number | null = null
  /** Every run of a step's fn, per job and step name (`<jobId>/<name>`). */
  readonly stepRuns = new Map<string, StepRun[]>()
  /**
   * When a cancel of the job was first answered 200 or 202. A worker already
   * running learns of a 202 at its next write or check; one invoked after the
   * answer must run no step at all.
   */
  readonly cancelAnsweredAt = new Map<string, number>()
  noteCancelAnswered(jobId: string) {
    if (!this.cancelAnsweredAt.has(jobId)) this.cancelAnsweredAt.set(jobId, this.sim.now)
  }
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
  /** Submit invocations whose worker call failed (maybe after the worker claimed). */
  readonly invokeFailed = new Set<Actor>()
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
    this.settings = {
      ...SETTINGS,
      ...(params.stepsPct ? { invocationLimitMs: STEPS_INVOCATION_LIMIT_MS } : {}),
      accountMaxRunning: params.accountLimit ?? null,
    }
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
          if (key.startsWith('account/') && this.dieAfterCharge.has(actor)) {
            actor.crashAfterOps = actor.opsRun
            this.count('submit died right after its charge')
          }
        }, (what) => this.count(what)),
      ),
      // Files: no simulated kind saves any.
      assets: memoryAssetPort(),
      clock: this.sim.clockFor(actor),
      ids: this.ids,
      kinds: simKinds((ms) => this.sim.sleep(actor, ms), (jobId, name) => this.recordStepRun(actor, jobId, name)),
      settings: this.settings,
      // The POST to the background function: it can fail before or after it was delivered.
      invokeWorker: (jobId) => this.invoke(actor, jobId),
      log: silentLogger,
      signingSecret: 'simulation-signing-secret-of-32-characters',
    }
  }

  private recordStepRun(actor: Actor, jobId: string, name: string) {
    const key = `${jobId}/${name}`
    const list = this.stepRuns.get(key) ?? []
    this.stepRuns.set(key, list)
    const run: StepRun = {
      id: `${actor.name}@${this.sim.stepNo}`,
      actor,
      startStep: this.sim.stepNo,
      done: false,
      storedAtStart: this.store.entries.has(stepKey(jobId, name)),
      afterCancel: (this.cancelAnsweredAt.get(jobId) ?? Infinity) < actor.startedAt,
      // A run of an actor that returned (not died) while the run went on counts: it is still running somewhere.
      concurrentWith: list.filter((other) => !other.done && (other.actor.endedStep === null || other.actor.finished)).map((other) => other.id),
    }
    list.push(run)
    if (list.length > 1) this.count('step fn run again')
    return { id: run.id, done: () => void (run.done = true) }
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
    return this.invokeCall(actor, jobId).catch((error: unknown) => {
      this.invokeFailed.add(actor)
      throw error
    })
  }

  private invokeCall(actor: Actor, jobId: string): Promise<void> {
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

export const describe = (error: unknown) =>
  error instanceof ApiError ? `${error.status} ${error.code}` : error instanceof Error ? `${error.name}: ${error.message}` : String(error)

export const transient = (outcome: Outcome<unknown>) =>
  outcome.died !== undefined ||
  outcome.error instanceof StorageUnavailableError ||
  (outcome.error instanceof ApiError && (outcome.error.status === 503 || outcome.error.code === 'idempotency_in_progress' || outcome.error.code === 'job_busy' || outcome.error.code === 'client_job_busy'))

