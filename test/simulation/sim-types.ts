/**
 * The vocabulary of the simulation's scheduler (scheduler.ts): its seeded
 * PRNG, actors, faults, statistics, the outcome of an invocation, and the
 * handle its simulated `setInterval` returns.
 */

/** mulberry32: small, fast, good enough to drive a schedule. */
export class Rng {
  private state: number
  constructor(seed: number) {
    this.state = (seed ^ 0x9e3779b9) >>> 0
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1))
  }
  chance(p: number): boolean {
    return p > 0 && this.next() < p
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!
  }
  /** A fresh generator derived from this one (independent streams per purpose). */
  fork(): Rng {
    return new Rng(Math.floor(this.next() * 2 ** 32))
  }
}

export type ActorKind = 'client' | 'submit' | 'worker' | 'cancel' | 'feed' | 'probe' | 'reaper' | 'admin'

export interface Actor {
  readonly id: number
  readonly name: string
  readonly kind: ActorKind
  alive: boolean
  finished: boolean
  /** Sim time at which the platform kills the invocation (Netlify's function time limits). */
  deadline: number | null
  /** The actor dies instead of running its storage op number `crashAfterOps + 1`. */
  crashAfterOps: number | null
  opsRun: number
  death: string | null
  startedAt: number
  diedAt: number | null
  /** The step at which it ended (returned, threw or died), for ordering against the store's history. */
  endedStep: number | null
  /** Set by the scenario: what this actor is about (a job id). */
  jobId?: string
  /** Called once when the actor dies (crash, time limit). */
  onDeath(reason: string): void
}

export type Fault = 'none' | 'fail-before' | 'fail-after' | 'delay' | SdkFault

/**
 * Faults of the simulated Blobs SDK (sim-sdk.ts), below the real adapter:
 * - `error-before`: a thrown network error, nothing landed;
 * - `error-after`: it landed, then a thrown network error (answer lost);
 * - `retried-412`: it landed, the SDK's retry got 412 → `{ modified: false }`;
 * - `empty-etag`: netlify/primitives#741, `{ modified: true, etag: '' }`, landed or not;
 * - `landed-twice`: an unconditional write landed, its answer was lost, and the
 *   SDK's retry landed it again seconds later (then answered ok);
 * - `invoke-lost`: the worker call was delivered, its answer is lost seconds later.
 */
export type SdkFault = 'error-before' | 'error-after' | 'retried-412' | 'empty-etag' | 'landed-twice' | 'invoke-lost'

export interface FaultRates {
  /** The op fails before it lands: a 5xx/429 burst outlasting the SDK's retries. */
  before: number
  /** The op lands, then its answer is lost: the adapter could not settle it. */
  after: number
  /** A slow answer: the op becomes due seconds later. */
  delay: number
}

export interface SimStats {
  steps: number
  ops: number
  faults: Record<'fail-before' | 'fail-after' | 'delay' | SdkFault, number> & { slow: number }
  crashes: Record<ActorKind, number>
  timeLimitKills: number
  orphansLanded: number
  stalls: number
  heartbeats: number
}

export const emptyStats = (): SimStats => ({
  steps: 0,
  ops: 0,
  faults: { 'fail-before': 0, 'fail-after': 0, delay: 0, 'error-before': 0, 'error-after': 0, 'retried-412': 0, 'empty-etag': 0, 'landed-twice': 0, 'invoke-lost': 0, slow: 0 },
  crashes: { client: 0, submit: 0, worker: 0, cancel: 0, feed: 0, probe: 0, reaper: 0, admin: 0 },
  timeLimitKills: 0,
  orphansLanded: 0,
  stalls: 0,
  heartbeats: 0,
})

export type Outcome<T> = { value: T; error?: undefined; died?: undefined } | { error: unknown; value?: undefined; died?: undefined } | { died: string; value?: undefined; error?: undefined }

/** What the simulated `setInterval` returns: enough of a Timeout for lib's use. */
export class SimInterval {
  readonly clear: () => void
  constructor(clear: () => void) {
    this.clear = clear
  }
  unref() {
    return this
  }
  ref() {
    return this
  }
  hasRef() {
    return false
  }
  [Symbol.toPrimitive]() {
    return 0
  }
}
