/**
 * Invariant 11 for the per-account limit (runs with `accountLimit`):
 * - never more jobs of one account running at once than its limit: a job
 *   runs from its first claim to its end (across attempts and invocations),
 *   and at no commit do more of an account's jobs run than the limit in force
 *   (after a raise or an unset mid-run, the higher one: functions started
 *   before the change still apply the old);
 * - jobs that waited in the account's line are handed slots in the order of
 *   their places (the order they appear in the slots record's `running`);
 * - after the quiet phase no slot is held and nobody waits (with the checks
 *   that no job is left live or waiting, this is "no job waits forever while
 *   capacity is free").
 */
import { isTerminal } from '../../lib/core/types.ts'
import type { SlotsRecord } from '../../lib/locks/slots.ts'
import type { JobHistory } from './invariants.ts'
import { type Commit, aliasIds as A } from './sim-store.ts'
import type { World } from './world.ts'

export function checkAccountLimit(
  world: World,
  history: readonly Commit[],
  jobs: Iterable<JobHistory>,
  expect: (condition: boolean, message: () => string) => void,
) {
  const limit = world.params.accountLimit
  if (limit === undefined) return
  const raisedAt = world.accountLimitChangedAt
  const bound = (n: number) => (raisedAt !== null && n >= raisedAt ? world.settings.accountMaxRunning : limit)

  // Running intervals, by account: first claim (a worker's `running` write) to the terminal write.
  const edges: { account: string; n: number; delta: 1 | -1; jobId: string }[] = []
  for (const job of jobs) {
    const claim = job.commits.find((c) => c.state.status === 'running')
    if (!claim) continue
    const end = job.commits.find((c) => isTerminal(c.state.status))
    edges.push({ account: claim.state.account, n: claim.commit.n, delta: 1, jobId: job.jobId })
    if (end) edges.push({ account: claim.state.account, n: end.commit.n, delta: -1, jobId: job.jobId })
  }
  edges.sort((a, b) => a.n - b.n || a.delta - b.delta)
  const running = new Map<string, Set<string>>()
  for (const edge of edges) {
    const set = running.get(edge.account) ?? new Set()
    running.set(edge.account, set)
    if (edge.delta === -1) {
      set.delete(edge.jobId)
      continue
    }
    set.add(edge.jobId)
    const max = bound(edge.n)
    if (max !== null) expect(set.size <= max, () => `I11 ${edge.account}: ${set.size} jobs running at once at #${edge.n} over its limit ${max}: ${A([...set].join(' '))}`)
    if (set.size > 1) world.count('account ran jobs side by side')
  }

  // Line order: a job's place is its first entry in the line (one whose place was not recorded on its
  // spec takes another, and the first one reached serves it); slots are handed in the order the
  // record's `running` gained them.
  const placeOf = new Map<string, number>()
  const admitted: { account: string; jobId: string }[] = []
  const seen = new Set<string>()
  for (const commit of history) {
    if (commit.key.startsWith('slotline/') && commit.op === 'create' && commit.after !== null) {
      const entry = JSON.parse(commit.after) as { jobId?: string }
      const seq = Number(commit.key.slice(commit.key.lastIndexOf('/') + 1))
      if (entry.jobId && !placeOf.has(entry.jobId)) placeOf.set(entry.jobId, seq)
    }
    if (commit.key.startsWith('slots/') && commit.after !== null) {
      const record = JSON.parse(commit.after) as SlotsRecord
      for (const jobId of record.running) {
        if (seen.has(jobId)) continue
        seen.add(jobId)
        admitted.push({ account: commit.key.slice('slots/'.length), jobId })
      }
    }
  }
  const lastPlace = new Map<string, { jobId: string; seq: number }>()
  for (const { account, jobId } of admitted) {
    const seq = placeOf.get(jobId)
    if (seq === undefined) continue
    world.count('job waited for its account')
    const previous = lastPlace.get(account)
    if (previous) expect(seq > previous.seq, () => `I11 ${account}: ${A(jobId)} (place ${seq}) was handed a slot after ${A(previous.jobId)} (place ${previous.seq})`)
    lastPlace.set(account, { jobId, seq })
  }

  // Nothing held, nobody waiting, once everything settled.
  for (const key of world.store.keysUnder('slots/')) {
    const record = JSON.parse(world.store.entries.get(key)!.data) as SlotsRecord
    expect(record.running.length === 0, () => `I11 ${key}: slots still held after the quiet phase by ${A(record.running.join(' '))}`)
    const waiting = record.line ? record.line.tail - record.line.head : 0
    expect(waiting === 0, () => `I11 ${key}: ${waiting} place(s) still in the account's line after the quiet phase`)
  }
}
