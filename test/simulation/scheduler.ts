/**
 * The seeded scheduler of the protocol simulation (see protocol.test.ts for the model).
 *
 * Every storage operation, every `clock.sleep`, every function start, every
 * heartbeat tick and every reaper cron tick is a *step*. A step's effect
 * happens, and its promise settles, only when the scheduler picks it; between
 * two picks the scheduler lets all microtasks run (one `setImmediate`), so
 * every actor has either finished or is parked on its next step. The pick is
 * made by a seeded PRNG among the steps that are due, so one seed gives one
 * interleaving, always the same.
 *
 * Time is simulated: each step moves the clock a few milliseconds; when
 * nothing is due the clock jumps to the next due step (a retry at +1 or +3
 * minutes, the next reaper run, a client coming back after the lock TTL, the
 * retention horizon); and with a small probability the whole system stalls
 * (the clock jumps by a heartbeat timeout or a Netlify retry delay) while
 * everyone is mid-flight.
 */
import { StorageUnavailableError } from '../../lib/storage/port.ts'
import type { Clock } from '../../lib/core/clock.ts'
import { type Actor, type ActorKind, type Fault, type FaultRates, type Outcome, Rng, SimInterval, emptyStats } from './sim-types.ts'

export { type Actor, type ActorKind, type Fault, type FaultRates, type Outcome, Rng, SimInterval, type SdkFault, type SimStats, emptyStats } from './sim-types.ts'

type StepType = 'op' | 'answer' | 'sleep' | 'start' | 'interval' | 'cron' | 'deadline' | 'orphan'

interface Step {
  id: number
  actor: Actor
  type: StepType
  /** What the step is, for the trace (a function when it costs something to say). */
  label: string | (() => string)
  readyAt: number
  fault: Fault
  /** Orphans (writes in flight when their actor died) land only until then. */
  expiresAt: number
  /** Performs the step; returns a short outcome for the trace. */
  fire(): string
  /** For a storage write: its effect alone, without answering anyone (an orphan landing). */
  land?: () => string
}

export interface SchedulerOptions {
  seed: number
  start?: number
  faults?: FaultRates
  /** Probability per step that the whole system stalls (a clock jump mid-flight). */
  stallRate?: number
  stallJumps?: readonly number[]
  /** Chance that a write in flight when its actor died still lands (shortly after). */
  orphanLandRate?: number
  /** Record a human-readable trace of every step. */
  trace?: boolean
  /**
   * Each step moves the clock by up to this many ms (default 40): the time a
   * call takes. 0 when the caller puts time on its calls itself (the scale
   * simulation), so parallel calls do not add up.
   */
  stepMs?: number
}

const IDLE = Symbol('idle')

export class Scheduler {
  now: number
  readonly rng: Rng
  /** A separate stream for Math.random inside lib (credit retry backoff). */
  readonly libRandom: Rng
  faults: FaultRates
  stallRate: number
  stallJumps: readonly number[]
  orphanLandRate: number
  readonly stats = emptyStats()
  readonly trace: string[] = []
  readonly actors: Actor[] = []
  /** The actor whose step was fired last: its continuation is what runs now. */
  current: Actor | null = null
  /** Auto mode: every op runs at once, without faults (contract tests, checks). */
  auto = false
  stepNo = 0
  readonly tracing: boolean
  private readonly stepMs: number
  private steps: Step[] = []
  private nextStepId = 0
  private readonly system: Actor

  constructor(options: SchedulerOptions) {
    this.rng = new Rng(options.seed)
    this.libRandom = this.rng.fork()
    this.now = options.start ?? Date.UTC(2026, 10, 22, 12, 0, 0)
    this.faults = options.faults ?? { before: 0, after: 0, delay: 0 }
    this.stallRate = options.stallRate ?? 0
    this.stallJumps = options.stallJumps ?? []
    this.orphanLandRate = options.orphanLandRate ?? 0
    this.tracing = options.trace ?? true
    this.stepMs = options.stepMs ?? 40
    this.system = this.newActor('system', 'client', null, null)
  }

  private newActor(name: string, kind: ActorKind, deadline: number | null, crashAfterOps: number | null): Actor {
    const actor: Actor = {
      id: this.actors.length,
      name,
      kind,
      alive: true,
      finished: false,
      deadline,
      crashAfterOps,
      opsRun: 0,
      death: null,
      startedAt: this.now,
      diedAt: null,
      endedStep: null,
      onDeath: () => {},
    }
    this.actors.push(actor)
    return actor
  }

  log(line: string) {
    if (this.tracing) this.trace.push(`#${this.stepNo} t+${this.elapsed()} ${line}`)
  }

  private readonly origin = Date.UTC(2026, 10, 22, 12, 0, 0)
  elapsed(at = this.now) {
    return `${((at - this.origin) / 1000).toFixed(3)}s`
  }

  // ---- what actors call ----------------------------------------------------

  /**
   * A storage operation (or a worker invocation) of `actor`. `effect` runs when
   * the step is picked; `write` says whether a lost answer can follow a landed op.
   */
  op<T>(actor: Actor, label: string | (() => string), write: boolean, effect: () => T, describe: (result: T) => string = () => 'ok'): Promise<T> {
    if (this.auto) return Promise.resolve().then(effect)
    if (!actor.alive) return new Promise<T>(() => {})
    const fault = this.chooseFault(write)
    let readyAt = this.now
    if (fault === 'delay') readyAt += this.rng.chance(0.1) ? this.rng.int(20_000, 40_000) : this.rng.int(500, 8_000)
    return new Promise<T>((resolve, reject) => {
      this.push({
        actor,
        type: 'op',
        label,
        readyAt,
        fault,
        expiresAt: Infinity,
        ...(write ? { land: () => (this.tracing ? describe(effect()) : (effect(), '')) } : {}),
        fire: () => {
          actor.opsRun++
          this.stats.ops++
          if (fault === 'fail-before') {
            this.stats.faults['fail-before']++
            reject(new StorageUnavailableError(`simulated: ${text(label)} failed before it landed`))
            return 'FAULT fail-before'
          }
          const result = effect()
          if (fault === 'fail-after' && write) {
            this.stats.faults['fail-after']++
            reject(new StorageUnavailableError(`simulated: ${text(label)} landed but its answer was lost`))
            return this.tracing ? `${describe(result)} FAULT fail-after` : ''
          }
          if (fault === 'delay') this.stats.faults.delay++
          resolve(result)
          return this.tracing ? `${describe(result)}${fault === 'delay' ? ' (slow)' : ''}` : ''
        },
      })
    })
  }

  private chooseFault(write: boolean): Fault {
    const r = this.rng.next()
    const { before, after, delay } = this.faults
    if (r < before) return 'fail-before'
    if (r < before + after) return write ? 'fail-after' : 'fail-before'
    if (r < before + after + delay) return 'delay'
    return 'none'
  }

  /**
   * A call whose effect happens `landIn` ms from now and whose answer comes
   * `answerIn` ms from now (≥ landIn): a slow call lands at some moment while
   * its caller waits, and others run in between. `run` performs the effect at
   * landing time and says what the caller will be answered; `land` is the
   * effect alone (a write in flight when its caller died may still land).
   */
  call<T>(
    actor: Actor,
    label: string | (() => string),
    plan: {
      landIn: number
      answerIn: number
      fault: Fault
      land: (() => string) | null
      run: () => { answer: { value: T } | { error: unknown }; note: string }
      /** Happens just before the answer (a retry landing the write again). */
      beforeAnswer?: () => void
    },
  ): Promise<T> {
    const settle = (answer: { value: T } | { error: unknown }, resolve: (v: T) => void, reject: (e: unknown) => void) =>
      'error' in answer ? reject(answer.error) : resolve(answer.value)
    if (this.auto) return new Promise<T>((resolve, reject) => settle(plan.run().answer, resolve, reject))
    if (!actor.alive) return new Promise<T>(() => {})
    const wait = Math.max(0, plan.answerIn - plan.landIn)
    return new Promise<T>((resolve, reject) => {
      this.push({
        actor,
        type: 'op',
        label,
        readyAt: this.now + plan.landIn,
        fault: plan.fault,
        expiresAt: Infinity,
        ...(plan.land ? { land: plan.land } : {}),
        fire: () => {
          actor.opsRun++
          this.stats.ops++
          if (plan.fault !== 'none') this.stats.faults[plan.fault]++
          if (wait > 0) this.stats.faults.slow++
          const { answer, note } = plan.run()
          if (wait === 0) {
            settle(answer, resolve, reject)
            return note
          }
          this.push({
            actor,
            type: 'answer',
            label: () => `answer to: ${text(label)}`,
            readyAt: this.now + wait,
            fault: 'none',
            expiresAt: Infinity,
            fire: () => {
              plan.beforeAnswer?.()
              settle(answer, resolve, reject)
              return plan.beforeAnswer ? 'landed again (the SDK retried), answered' : 'answered'
            },
          })
          return `${note} (its answer comes ${(wait / 1000).toFixed(1)}s later)`
        },
      })
    })
  }

  sleep(actor: Actor, ms: number, signal?: AbortSignal): Promise<void> {
    if (this.auto) {
      this.now += Math.max(0, ms)
      return Promise.resolve()
    }
    if (!actor.alive) return new Promise<void>(() => {})
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve()
      const step = this.push({
        actor,
        type: 'sleep',
        label: `sleep ${Math.round(ms)}ms`,
        readyAt: this.now + Math.max(0, ms),
        fault: 'none',
        expiresAt: Infinity,
        fire: () => {
          resolve()
          return 'woke'
        },
      })
      signal?.addEventListener('abort', () => (step.readyAt = Math.min(step.readyAt, this.now)), { once: true })
    })
  }

  clockFor(actor: Actor): Clock {
    return { now: () => this.now, sleep: (ms, signal) => this.sleep(actor, ms, signal) }
  }

  /**
   * Starts an actor at `startAt`. The returned promise settles when its body
   * does, or with `{ died }` when it is killed (crash, time limit): whoever
   * waits for it (a client waiting for its HTTP answer) sees a failed request.
   */
  spawn<T>(
    spec: { name: string; kind: ActorKind; startAt?: number; timeLimitMs?: number | null; crashAfterOps?: number | null; jobId?: string },
    body: (actor: Actor) => Promise<T>,
  ): { actor: Actor; outcome: Promise<Outcome<T>> } {
    const startAt = Math.max(this.now, spec.startAt ?? this.now)
    const actor = this.newActor(spec.name, spec.kind, spec.timeLimitMs == null ? null : startAt + spec.timeLimitMs, spec.crashAfterOps ?? null)
    actor.startedAt = startAt
    if (spec.jobId) actor.jobId = spec.jobId
    let settle!: (outcome: Outcome<T>) => void
    const outcome = new Promise<Outcome<T>>((resolve) => (settle = resolve))
    let deadlineStep: Step | null = null
    const finish = (result: Outcome<T>) => {
      if (!actor.alive || actor.finished) return
      actor.finished = true
      actor.endedStep = this.stepNo
      if (deadlineStep) this.remove(deadlineStep)
      this.removeStepsOf(actor)
      settle(result)
    }
    actor.onDeath = (reason) => settle({ died: reason })
    this.push({
      actor,
      type: 'start',
      label: 'start',
      readyAt: startAt,
      fault: 'none',
      expiresAt: Infinity,
      fire: () => {
        let promise: Promise<T>
        try {
          promise = body(actor)
        } catch (error) {
          promise = Promise.reject(error)
        }
        promise.then(
          (value) => finish({ value }),
          (error: unknown) => finish({ error }),
        )
        return 'started'
      },
    })
    if (actor.deadline !== null) {
      deadlineStep = this.push({
        actor,
        type: 'deadline',
        label: 'time limit',
        readyAt: actor.deadline,
        fault: 'none',
        expiresAt: Infinity,
        fire: () => {
          this.stats.timeLimitKills++
          this.kill(actor, 'time limit')
          return 'killed by the platform time limit'
        },
      })
    }
    return { actor, outcome }
  }

  /** A periodic background job (the reaper's cron). Background steps never keep a run going. */
  cron(name: string, periodMs: number, firstAt: number, tick: () => void): { stop(): void } {
    let stopped = false
    const arm = (at: number) => {
      if (stopped) return
      this.push({
        actor: this.system,
        type: 'cron',
        label: `cron ${name}`,
        readyAt: at,
        fault: 'none',
        expiresAt: Infinity,
        fire: () => {
          tick()
          // Netlify does not catch up missed ticks: the next one is the next boundary.
          arm(at + Math.max(1, Math.ceil((this.now + 1 - at) / periodMs)) * periodMs)
          return 'tick'
        },
      })
    }
    arm(firstAt)
    return {
      stop: () => {
        stopped = true
        this.steps = this.steps.filter((s) => !(s.type === 'cron' && s.label === `cron ${name}`))
      },
    }
  }

  /** A heartbeat `setInterval` of the worker, on simulated time; dies with its actor. */
  interval(actor: Actor, callback: () => void, ms: number): SimInterval {
    const handle = new SimInterval(() => {
      if (step) this.remove(step)
      step = null
    })
    let step: Step | null = null
    const arm = () => {
      step = this.push({
        actor,
        type: 'interval',
        label: `heartbeat timer`,
        readyAt: this.now + ms,
        fault: 'none',
        expiresAt: Infinity,
        fire: () => {
          this.stats.heartbeats++
          arm()
          callback()
          return 'tick'
        },
      })
    }
    if (actor.alive) arm()
    return handle
  }

  /** The actor stops here: its pending steps are dropped, its in-flight writes may still land. */
  kill(actor: Actor, reason: string) {
    if (!actor.alive) return
    actor.alive = false
    actor.death = reason
    actor.diedAt = this.now
    actor.endedStep = this.stepNo
    if (reason !== 'time limit') this.stats.crashes[actor.kind]++
    for (const step of this.steps.filter((s) => s.actor === actor)) {
      this.remove(step)
      if (step.type === 'op' && step.land && step.fault !== 'fail-before' && this.rng.chance(this.orphanLandRate)) {
        const land = step.land
        this.push({
          ...step,
          type: 'orphan',
          label: () => `${text(step.label)} (in flight when ${actor.name} died)`,
          // A slow write lands when it was due to; any other within a second.
          readyAt: Math.max(this.now, step.readyAt) + this.rng.int(0, 1_000),
          expiresAt: Math.max(this.now, step.readyAt) + 2_000,
          // It lands, but nobody is there to read the answer.
          fire: () => {
            this.stats.orphansLanded++
            return land()
          },
        })
      }
    }
    this.log(`${actor.name} DIED (${reason})`)
    actor.onDeath(reason)
  }

  // ---- the loop --------------------------------------------------------------

  private push(step: Omit<Step, 'id'>): Step {
    const full = { ...step, id: this.nextStepId++ }
    this.steps.push(full)
    return full
  }

  private remove(step: Step) {
    const index = this.steps.indexOf(step)
    if (index !== -1) this.steps.splice(index, 1)
  }

  private removeStepsOf(actor: Actor) {
    this.steps = this.steps.filter((s) => s.actor !== actor || s.type === 'orphan')
  }

  /** Lets every resumed actor run until it parks on its next step. */
  private drain() {
    return new Promise<void>((resolve) => setImmediate(resolve))
  }

  /**
   * Runs until nothing but background steps (cron) is left, or until the next
   * due step is later than `stopAt`. Throws if a run does not settle.
   */
  async run(options: { stopAt?: number; maxSteps?: number } = {}): Promise<void> {
    const maxSteps = options.maxSteps ?? 400_000
    for (;;) {
      await this.drain()
      // Whatever runs from here on (vitest, timers) is no actor's doing.
      this.current = null
      const picked = this.pick(options.stopAt)
      if (picked === IDLE) return
      if (picked === null) continue
      if (++this.stepNo > maxSteps) throw new SimulationStuckError(`no quiescence after ${maxSteps} steps`)
      this.fire(picked)
    }
  }

  private pick(stopAt = Infinity): Step | null | typeof IDLE {
    // Orphans that did not land within their window never will.
    this.steps = this.steps.filter((s) => s.expiresAt >= this.now)
    if (!this.steps.some((s) => s.type !== 'cron')) return IDLE
    const due = this.steps.filter((s) => s.readyAt <= this.now)
    if (due.length === 0) {
      const next = Math.min(...this.steps.map((s) => s.readyAt))
      if (next > stopAt) return IDLE
      this.now = next
      return null
    }
    const step = due[Math.floor(this.rng.next() * due.length)]!
    this.remove(step)
    const { actor } = step
    if (step.type !== 'orphan' && step.type !== 'cron') {
      if (!actor.alive) return null
      if (actor.deadline !== null && this.now > actor.deadline && step.type !== 'deadline') {
        this.stats.timeLimitKills++
        this.kill(actor, 'time limit')
        return null
      }
      if (step.type === 'op' && actor.crashAfterOps !== null && actor.opsRun >= actor.crashAfterOps) {
        this.log(`${actor.name} crashes before: ${text(step.label)}`)
        this.kill(actor, `crash after ${actor.opsRun} storage calls`)
        return null
      }
    }
    return step
  }

  private fire(step: Step) {
    this.stats.steps++
    this.current = step.actor
    const outcome = step.fire()
    if (this.tracing && step.type !== 'sleep' && step.type !== 'interval') this.log(`${step.actor.name} ${text(step.label)} → ${outcome}`)
    this.now += this.rng.int(0, this.stepMs)
    if (this.stallJumps.length && this.rng.chance(this.stallRate)) {
      const jump = this.rng.pick(this.stallJumps) + this.rng.int(0, 5_000)
      this.stats.stalls++
      this.now += jump
      this.log(`STALL: the clock jumps ${Math.round(jump / 1000)}s while everyone is mid-flight`)
    }
  }
}

const text = (label: string | (() => string)) => (typeof label === 'function' ? label() : label)

export class SimulationStuckError extends Error {
  override name = 'SimulationStuckError'
}

/**
 * While a simulation runs: `Math.random` draws from the seed (lib's credit
 * retry backoff sleeps a random time), and a `setInterval` made by a worker
 * during its step (the heartbeat) runs on simulated time.
 */
export function installDeterminism(sim: Scheduler): () => void {
  const realRandom = Math.random
  const realSetInterval = globalThis.setInterval
  const realClearInterval = globalThis.clearInterval
  Math.random = () => sim.libRandom.next()
  globalThis.setInterval = ((callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const actor = sim.current
    if (actor && actor.kind === 'worker' && !sim.auto) return sim.interval(actor, () => callback(...args), ms ?? 0)
    return realSetInterval(callback, ms, ...args)
  }) as typeof setInterval
  globalThis.clearInterval = ((handle: unknown) => {
    if (handle instanceof SimInterval) return handle.clear()
    return realClearInterval(handle as Parameters<typeof clearInterval>[0])
  }) as typeof clearInterval
  return () => {
    Math.random = realRandom
    globalThis.setInterval = realSetInterval
    globalThis.clearInterval = realClearInterval
  }
}
