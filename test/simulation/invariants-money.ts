/**
 * Invariants about money and promises to clients, checked once everything
 * has settled (after retention, when every lost charge has been pruned):
 * - the ledger's chunks and pages on storage hold exactly the entries that
 *   committed account writes hold (a losing writer never leaves its own);
 * - one Idempotency-Key makes at most one job and at most one charge that stands;
 * - a submit that answered 503 worker_unavailable ("could not be started")
 *   left a job that never started: a client retrying it must not pay twice.
 */
import { readLedger } from '../../lib/credits.ts'
import type { JobSpec, JobState } from '../../lib/types.ts'
import { aliasIds as A } from './sim-store.ts'
import { ACCOUNTS, type World } from './scenario.ts'

export interface MoneyReport {
  violations: string[]
  checks: number
}

const LEDGER_BLOB = /^ledger\/([^/]+)\/(c|p)\/(\d+)$/

export async function checkMoney(world: World): Promise<MoneyReport> {
  const violations: string[] = []
  let checks = 0
  const expect = (condition: boolean, message: () => string) => {
    checks++
    if (!condition) violations.push(message())
  }
  const { history } = world.store

  // ---- the ledger on storage = what committed account writes hold --------------
  const committed = new Map<string, Map<number, string>>()
  for (const commit of history) {
    if (!commit.key.startsWith('account/') || commit.after === null) continue
    const account = commit.key.slice('account/'.length)
    const entries = committed.get(account) ?? new Map<number, string>()
    committed.set(account, entries)
    const record = JSON.parse(commit.after) as { ledger: { lastSeq: number; tail: { seq: number }[] } }
    const before = commit.before ? (JSON.parse(commit.before) as { ledger: { lastSeq: number } }).ledger.lastSeq : 0
    if (record.ledger.lastSeq - before > 1) {
      world.count('multi-entry ledger write')
      if (Math.floor(before / 10) < Math.floor((record.ledger.lastSeq - 1) / 10)) world.count('multi-entry ledger write across a chunk')
    }
    for (const entry of record.ledger.tail) {
      const text = canonical(entry)
      const earlier = entries.get(entry.seq)
      expect(earlier === undefined || earlier === text, () => `I4 ${account}: ledger entry ${entry.seq} committed twice, differently: ${A(earlier!)} then ${A(text)}`)
      entries.set(entry.seq, text)
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
  const standing = (account: string, jobId: string) => {
    let total = 0
    for (const entry of ledgers.get(account) ?? []) if (entry.data.jobId === jobId && (entry.type === 'charge' || entry.type === 'refund')) total -= entry.data.amount
    return total
  }
  const created = new Map<string, string>()
  for (const commit of history) if (commit.key.startsWith('queue/') && commit.op === 'create') created.set(commit.key.slice('queue/'.length), commit.after!)
  const byKey = new Map<string, { jobs: string[]; charged: string[] }>()
  for (const [jobId, { account, idempotencyKey }] of world.submitted) {
    if (idempotencyKey === null) continue
    const key = `${account}/${idempotencyKey}`
    const group = byKey.get(key) ?? { jobs: [], charged: [] }
    byKey.set(key, group)
    if (created.has(jobId) && !world.refused.has(jobId)) group.jobs.push(jobId)
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
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}
