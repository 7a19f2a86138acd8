/**
 * The simulated store: one atomic in-memory map (the same semantics as
 * lib/storage/memory.ts, kept synchronous so the scheduler decides exactly
 * when an op lands), seen by each actor through its own BlobPort whose every
 * call is a scheduler step with an injected fault or none.
 *
 * The simulation's actors reach it through the real Blobs adapter over a
 * simulated SDK (sim-sdk.ts), where faults are injected. `simPort` below is
 * the plain port over the same store (no adapter), for the contract suite.
 *
 * Every landed write to `lock/`, `job/`, `queue/`, `waiting/`, `account/` and `ledger/` is recorded, in order,
 * with the actor that made it: the invariant checks replay that history.
 */
import type { BlobListing, BlobPort, VersionedBlob, WriteOutcome } from '../../lib/storage/port.ts'
import type { Actor, Scheduler } from './scheduler.ts'

export interface Commit {
  /** Position in the global order of landed writes. */
  n: number
  step: number
  time: number
  actor: Actor | null
  op: 'create' | 'replace' | 'put' | 'delete'
  key: string
  before: string | null
  after: string | null
  /** For `job/<id>` writes: the lock record of the job's resource at that instant. */
  lockAt?: string | null
  /** For `lock/` writes: whether the previous holder had a spec or state at that instant. */
  previousHolderExists?: boolean
}

/** Account and ledger writes too (the ledger check compares the chunks on storage with committed entries), and account slots and their lines (invariants-account.ts). */
const RECORDED = /^(lock|job|queue|waiting|reservation|account|ledger|slots|slotline)\//

export type Metadata = Record<string, unknown>

export class AtomicStore {
  readonly entries = new Map<string, { data: string; version: string; metadata?: Metadata }>()
  readonly history: Commit[] = []
  private counter = 0
  private readonly sim: Scheduler
  /** A job's lock key never changes: parsed once per job. */
  private readonly lockKeys = new Map<string, string | null>()

  constructor(sim: Scheduler) {
    this.sim = sim
  }

  read(key: string): VersionedBlob | null {
    const entry = this.entries.get(key)
    return entry ? { data: entry.data, version: entry.version } : null
  }

  create(key: string, data: string, metadata?: Metadata): WriteOutcome {
    if (this.entries.has(key)) return { ok: false }
    return { ok: true, version: this.set(key, data, 'create', metadata) }
  }

  replace(key: string, data: string, version: string, metadata?: Metadata): WriteOutcome {
    const entry = this.entries.get(key)
    if (!entry || entry.version !== version) return { ok: false }
    return { ok: true, version: this.set(key, data, 'replace', metadata) }
  }

  put(key: string, data: string, metadata?: Metadata) {
    return this.set(key, data, 'put', metadata)
  }

  metadata(key: string): { version: string; metadata: Metadata } | null {
    const entry = this.entries.get(key)
    return entry ? { version: entry.version, metadata: entry.metadata ?? {} } : null
  }

  /** Keys under a prefix with their versions (the SDK's `list` reports ETags). */
  listWithVersions(prefix: string, options: { directories?: boolean } = {}) {
    const listing = this.list(prefix, options)
    return { blobs: listing.keys.map((key) => ({ key, etag: this.entries.get(key)!.version })), directories: listing.directories }
  }

  delete(key: string) {
    const before = this.entries.get(key)?.data ?? null
    this.entries.delete(key)
    if (before !== null) this.record('delete', key, before, null)
  }

  list(prefix: string, options: { directories?: boolean } = {}): BlobListing {
    const keys: string[] = []
    const directories = new Set<string>()
    for (const key of [...this.entries.keys()].sort()) {
      if (!key.startsWith(prefix)) continue
      const slash = key.indexOf('/', prefix.length)
      if (options.directories && slash !== -1) directories.add(key.slice(0, slash))
      else keys.push(key)
    }
    return { keys, directories: [...directories] }
  }

  keysUnder(prefix: string) {
    return [...this.entries.keys()].filter((key) => key.startsWith(prefix)).sort()
  }

  private set(key: string, data: string, op: Commit['op'], metadata?: Metadata) {
    const before = this.entries.get(key)?.data ?? null
    const version = `"v${(++this.counter).toString(36)}"`
    this.entries.set(key, metadata ? { data, version, metadata } : { data, version })
    this.record(op, key, before, data)
    return version
  }

  private record(op: Commit['op'], key: string, before: string | null, after: string | null) {
    if (!RECORDED.test(key)) return
    const commit: Commit = { n: this.history.length, step: this.sim.stepNo, time: this.sim.now, actor: this.sim.current, op, key, before, after }
    if (key.startsWith('job/') && after !== null) {
      let lockKey = this.lockKeys.get(key)
      if (lockKey === undefined) this.lockKeys.set(key, (lockKey = (JSON.parse(after) as { lockKey: string | null }).lockKey))
      if (lockKey) commit.lockAt = this.entries.get(`lock/${lockKey}`)?.data ?? null
    }
    if (key.startsWith('lock/') && before !== null) {
      const previous = JSON.parse(before) as { state: string; jobId?: string }
      if (previous.jobId) commit.previousHolderExists = this.entries.has(`queue/${previous.jobId}`) || this.entries.has(`waiting/${previous.jobId}`) || this.entries.has(`job/${previous.jobId}`)
    }
    this.history.push(commit)
  }
}

/** The job whose spec a commit created (at `queue/`, or `waiting/` for a job that waits), or null. */
export function specCreated(commit: Pick<Commit, 'op' | 'key'>): string | null {
  if (commit.op !== 'create') return null
  const match = /^(queue|waiting)\/(.+)$/.exec(commit.key)
  return match ? match[2]! : null
}

const short = (key: string) => key.replace(/job_simjob00(0*)([0-9a-f]+)/g, (_m, _z, n: string) => `J${parseInt(n, 16)}`)
export const aliasIds = short

/** The port one actor sees: every call a scheduler step. In auto mode, a plain atomic store. */
export function simPort(sim: Scheduler, store: AtomicStore, actor: Actor): BlobPort {
  const label = (op: string, key: string) => () => `${op} ${short(key)}`
  const written = (outcome: WriteOutcome) => (outcome.ok ? 'ok' : 'conflict')
  return {
    read: (key) => sim.op(actor, label('read', key), false, () => store.read(key), (blob) => (blob ? 'found' : 'absent')),
    create: (key, data) => sim.op(actor, label('create', key), true, () => store.create(key, data), written),
    async replace(key, data, version) {
      if (!version) throw new TypeError(`replace("${key}") needs the version it read; refusing an unconditional write`)
      return sim.op(actor, label('replace', key), true, () => store.replace(key, data, version), written)
    },
    put: (key, data) => sim.op(actor, label('put', key), true, () => void store.put(key, data)),
    delete: (key) => sim.op(actor, label('delete', key), true, () => store.delete(key)),
    list: (prefix, options) =>
      sim.op(actor, label('list', prefix), false, () => store.list(prefix, options), (listing) => `${listing.keys.length} keys`),
  }
}
