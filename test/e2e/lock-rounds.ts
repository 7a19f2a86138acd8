/**
 * The lock proof through `netlify dev`: 20 submits of one document at once,
 * round after round; every round exactly one is accepted and the nineteen
 * others answer 409 `resource_locked` naming it. `npm test` runs one round
 * (test/e2e/lock-proof.test.ts), `npm run test:soak` fifty (test/soak).
 * E2E_LOCK_ROUNDS sets the number for either.
 */
import { expect } from 'vitest'

export interface SubmitAnswer {
  status: number
  body: any
}

export const lockRounds = (fallback: number) => {
  const rounds = Number(process.env.E2E_LOCK_ROUNDS ?? fallback)
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`E2E_LOCK_ROUNDS must be a whole number of rounds, not ${process.env.E2E_LOCK_ROUNDS}`)
  return rounds
}

/** A job's lifetime as its status route tells it. */
export interface JobTimes {
  createdAt: string
  finishedAt: string | null
}

/**
 * `submit(round)` submits that round's document (the same one on every call of
 * the round). Each round, one submit is accepted and the others answer 409
 * naming it. A round's job may also finish before the last of its 20 requests
 * is even read (a busy machine spreads them out); a later request then takes the
 * free lock, legitimately. So a second 202 is accepted only if the jobs' lives
 * did not overlap: each was created after the one before it had finished. Every
 * 409 must name one of the round's accepted jobs.
 */
export async function expectOneHolderPerRound(
  rounds: number,
  submit: (round: number) => Promise<SubmitAnswer>,
  readJob: (jobId: string) => Promise<JobTimes>,
): Promise<{ sequentialRounds: number; holders: string[] }> {
  // The local sandbox's conditional writes are made atomic by the install-time
  // patch (patches/@netlify+blobs+*.patch); without it, several submits win at once.
  let sequentialRounds = 0
  const all: string[] = []
  for (let round = 0; round < rounds; round++) {
    const answers = await Promise.all(Array.from({ length: 20 }, () => submit(round)))
    const accepted = answers.filter((a) => a.status === 202)
    const refused = answers.filter((a) => a.status === 409)
    const label = `round ${round}: ${answers.map((a) => a.status).join(',')}`
    expect(accepted.length, label).toBeGreaterThanOrEqual(1)
    expect(accepted.length + refused.length, label).toBe(20)
    const holders = new Set(accepted.map((a) => a.body.jobId as string))
    all.push(...holders)
    for (const answer of refused) {
      expect(answer.body.error.code).toBe('resource_locked')
      expect(holders.has(answer.body.holder.jobId), label).toBe(true)
    }
    if (accepted.length > 1) {
      sequentialRounds++
      const lives = (await Promise.all([...holders].map(readJob))).sort((x, y) => x.createdAt.localeCompare(y.createdAt))
      for (let i = 1; i < lives.length; i++) {
        const before = lives[i - 1]!
        expect(before.finishedAt, `${label}: two jobs held the lock at once`).not.toBeNull()
        expect(lives[i]!.createdAt >= before.finishedAt!, `${label}: job created ${lives[i]!.createdAt} while the one before it (finished ${before.finishedAt}) was live`).toBe(true)
      }
    }
  }
  return { sequentialRounds, holders: all }
}
