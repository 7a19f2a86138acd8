/**
 * Queueing (invariant 9): jobs that waited in a resource's line start in the
 * order of their places (submit order; a job passed over before its entry was
 * written took a later place). By claim, their places only grow. A job's
 * place is the `queueSeq` last written on its waiting spec.
 */
import type { JobSpec } from '../../lib/core/types.ts'
import type { JobHistory } from './invariants.ts'
import { type Commit, aliasIds as A } from './sim-store.ts'

export function checkLineOrder(
  history: readonly Commit[],
  jobs: Iterable<JobHistory>,
  expect: (condition: boolean, message: () => string) => void,
  count: (what: string) => void,
) {
  const placeOf = new Map<string, number>()
  for (const commit of history) {
    if (!commit.key.startsWith('waiting/') || commit.after === null) continue
    const seq = (JSON.parse(commit.after) as JobSpec).queueSeq
    if (seq !== undefined) placeOf.set(commit.key.slice('waiting/'.length), seq)
  }
  const claimsByResource = new Map<string, { jobId: string; n: number; seq: number }[]>()
  for (const job of jobs) {
    const seq = placeOf.get(job.jobId)
    const claim = job.commits.find((c) => c.commit.actor === job.claimer)?.commit
    const lockKey = job.spec?.lockKey
    if (seq === undefined || !claim || !lockKey) continue
    const list = claimsByResource.get(lockKey) ?? []
    list.push({ jobId: job.jobId, n: claim.n, seq })
    claimsByResource.set(lockKey, list)
  }
  for (const [lockKey, list] of claimsByResource) {
    list.sort((a, b) => a.n - b.n)
    for (let i = 1; i < list.length; i++) {
      const [previous, next] = [list[i - 1]!, list[i]!]
      expect(next.seq > previous.seq, () => `I9 ${lockKey}: ${A(next.jobId)} (place ${next.seq}) started after ${A(previous.jobId)} (place ${previous.seq})`)
      count('queued jobs started in line order')
    }
  }
}
