/**
 * Invariants about money and promises to clients, checked once everything
 * has settled (after retention):
 * - every committed account record is flat (balance and ledger position, no
 *   reservations) and at most 16 KB;
 * - the ledger's chunks and pages on storage hold exactly the entries that
 *   committed account writes hold (a losing writer never leaves its own);
 * - no operation (`charge:<job>`, `refund:<job>`, a grant) is in the ledger twice;
 * - one Idempotency-Key makes at most one job (besides jobs failed as "could
 *   not be started" before any worker took them) and at most one charge that stands;
 * - a submit that answered 503 worker_unavailable ("could not be started")
 *   left a job that never started: a client retrying it must not pay twice.
 */
import { readLedger } from '../../lib/credits/index.ts'
import { CHUNK_SIZE } from '../../lib/events/log.ts'
import { keys } from '../../lib/storage/keys.ts'
import type { JobSpec, JobState } from '../../lib/core/types.ts'
import { aliasIds as A, specCreated } from './sim-store.ts'
import { ACCOUNTS, type World } from './world.ts'

export interface MoneyReport {
  violations: string[]
  checks: number
}

const LEDGER_BLOB = /^ledger\/([^/]+)\/(c|p)\/(\d+)$/
const FLAT_ACCOUNT = 'account apiKeys balance createdAt ledger tokenGeneration updatedAt webhookUrl'
const RECORD_LIMIT = 16 * 1024

export async function checkMoney(world: World): Promise<MoneyReport> {
  const violations: string[] = []
  let checks = 0
  const expect = (condition: boolean, message: () => string) => {
    checks++
    if (!condition) violations.push(message())
  }
  const { history } = world.store

  // ---- the ledger on storage = what committed account writes hold --------------
  // Committed: the tail of every landed account write, and the chunks that write
  // flushed (its writer's own put of each, just before it).
  const committed = new Map<string, Map<number, string>>()
  const commitEntries = (account: string, entries: { seq: number }[]) => {
    const known = committed.get(account) ?? new Map<number, string>()
    committed.set(account, known)
    for (const entry of entries) {
      const text = canonical(entry)
      const earlier = known.get(entry.seq)
      expect(earlier === undefined || earlier === text, () => `I4 ${account}: ledger entry ${entry.seq} committed twice, differently: ${A(earlier!)} then ${A(text)}`)
      known.set(entry.seq, text)
    }
  }
  const lastPut = new Map<string, string>()
  for (const commit of history) {
    if (commit.key.startsWith('ledger/') && commit.after !== null) lastPut.set(`${commit.actor?.id}:${commit.key}`, commit.after)
    if (!commit.key.startsWith('account/') || commit.after === null) continue
    const account = commit.key.slice('account/'.length)
    type Ledger = { ledger: { lastSeq: number; flushedSeq: number; tail: { seq: number }[] } }
    // The record is flat: balance and ledger position only, a few KB whatever the history.
    const fields = Object.keys(JSON.parse(commit.after) as object).sort().join(' ')
    expect(fields === FLAT_ACCOUNT && commit.after.length <= RECORD_LIMIT, () =>
      `I4 ${commit.key}: a committed record of ${commit.after!.length} bytes with fields ${fields} (flat, at most ${RECORD_LIMIT} bytes)`,
    )
    const after = (JSON.parse(commit.after) as Ledger).ledger
    const before = commit.before ? (JSON.parse(commit.before) as Ledger).ledger : { lastSeq: 0, flushedSeq: 0 }
    commitEntries(account, after.tail)
    for (let chunk = before.flushedSeq / CHUNK_SIZE; chunk < after.flushedSeq / CHUNK_SIZE; chunk++) {
      const put = lastPut.get(`${commit.actor?.id}:${keys.ledgerChunk(account, chunk)}`)
      if (put) commitEntries(account, JSON.parse(put) as { seq: number }[])
    }
    if (after.lastSeq - before.lastSeq > 1) {
      world.count('multi-entry ledger write')
      if (after.flushedSeq > before.flushedSeq && after.flushedSeq > before.lastSeq) world.count('multi-entry ledger write flushing its own entries')
    }
  }
  for (const key of world.store.keysUnder('ledger/')) {
    const match = LEDGER_BLOB.exec(key)
    if (!match) continue
    const entries = committed.get(match[1]!) ?? new Map<number, string>()
    for (const entry of JSON.parse(world.store.read(key)!.data) as { seq: number }[]) {
      const want = entries.get(entry.seq)
      expect(want === canonical(entry), () =>
        `I4 ${key} holds ledger entry ${entry.seq} as ${A(canonical(entry))}, but the committed account writes hold ${A(want ?? 'nothing')}`,
      )
    }
  }

  // ---- one Idempotency-Key: one job, one charge ------------------------------------
  const ledgers = new Map<string, Awaited<ReturnType<typeof readLedger>>>()
  for (const account of ACCOUNTS) ledgers.set(account, await readLedger(world.directDeps().store, account))
  // Every balance change carries an operation id unique to it: none is applied twice.
  for (const [account, ledger] of ledgers) {
    const seen = new Set<string>()
    for (const entry of ledger) {
      const op = entry.data.op
      if (op === undefined) continue
      expect(!seen.has(op), () => `I4 ${account}: operation ${A(op)} applied twice (ledger entry ${entry.seq})`)
      seen.add(op)
    }
  }
  const standing = (account: string, jobId: string) => {
    let total = 0
    for (const entry of ledgers.get(account) ?? []) if (entry.data.jobId === jobId && (entry.type === 'charge' || entry.type === 'refund')) total -= entry.data.amount
    return total
  }
  const created = new Map<string, string>()
  // A waiting job's spec is created at `waiting/` first, and at `queue/` when it starts: the first counts.
  for (const commit of history) {
    const id = specCreated(commit)
    if (id && !created.has(id)) created.set(id, commit.after!)
  }
  // A job failed as "could not be started" before any worker took it (by its own submit, whether or
  // not that submit lived to answer 503, or by the reaper: worker_never_started) frees its key
  // (lib/jobs/idempotency.ts): the retry is a new attempt. It never ran and was refunded.
  const failedUnstarted = (jobId: string) => {
    if (history.some((c) => c.key === `job/${jobId}` && c.actor?.kind === 'worker')) return false
    const last = history.filter((c) => c.key === `job/${jobId}` && c.after !== null).at(-1)
    const final = last ? (JSON.parse(last.after!) as JobState) : null
    return final?.status === 'failed' && final.startedAt === null && (final.error?.code === 'worker_unavailable' || final.error?.code === 'worker_never_started')
  }
  const byKey = new Map<string, { jobs: string[]; charged: string[] }>()
  for (const [jobId, { account, idempotencyKey }] of world.submitted) {
    if (idempotencyKey === null) continue
    const key = `${account}/${idempotencyKey}`
    const group = byKey.get(key) ?? { jobs: [], charged: [] }
    byKey.set(key, group)
    if (created.has(jobId) && !world.refused.has(jobId) && !failedUnstarted(jobId)) group.jobs.push(jobId)
    if (standing(account, jobId) > 0) group.charged.push(jobId)
  }
  for (const [key, { jobs, charged }] of byKey) {
    expect(jobs.length <= 1, () => `idempotency ${key}: one Idempotency-Key created ${jobs.length} jobs: ${jobs.map(A).join(' ')}`)
    expect(charged.length <= 1, () => `I4 idempotency ${key}: one Idempotency-Key left ${charged.length} charges standing: ${charged.map(A).join(' ')}`)
  }

  // ---- "could not be started" means it did not start --------------------------------
  for (const jobId of world.refused) {
    const claim = history.find((c) => c.key === `job/${jobId}` && c.op === 'create' && c.actor?.kind === 'worker')
    const last = history.filter((c) => c.key === `job/${jobId}` && c.after !== null).at(-1)
    const final = last ? (JSON.parse(last.after!) as JobState) : null
    const spec = created.has(jobId) ? (JSON.parse(created.get(jobId)!) as JobSpec) : null
    const account = spec?.account ?? world.submitted.get(jobId)?.account ?? ''
    expect(!claim, () =>
      `I4 ${A(jobId)}: the submit answered 503 worker_unavailable (could not be started), but its worker claimed it and it ended ` +
      `${final?.status ?? 'unknown'} with ${standing(account, jobId)} credit(s) charged: a client that retries pays twice`,
    )
  }
  return { violations, checks }
}

/** JSON with sorted keys: a record read back through its schema comes out in another key order. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}
