/**
 * The lock proof through `netlify dev`: 20 submits of one document at once,
 * round after round; every round exactly one is accepted and the nineteen
 * others answer 409 `resource_locked` naming it. `npm test` runs a few rounds
 * (test/e2e/netlify-dev.test.ts), `npm run test:soak` fifty (test/soak).
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

/** `submit(round)` submits that round's document (the same one on every call of the round). */
export async function expectOneHolderPerRound(rounds: number, submit: (round: number) => Promise<SubmitAnswer>) {
  // The local sandbox's conditional writes are made atomic by the install-time
  // patch (patches/@netlify+blobs+*.patch); without it, several submits win.
  for (let round = 0; round < rounds; round++) {
    const answers = await Promise.all(Array.from({ length: 20 }, () => submit(round)))
    const accepted = answers.filter((a) => a.status === 202)
    const refused = answers.filter((a) => a.status === 409)
    expect(accepted, `round ${round}: ${answers.map((a) => a.status).join(',')}`).toHaveLength(1)
    expect(refused).toHaveLength(19)
    for (const answer of refused) {
      expect(answer.body.error.code).toBe('resource_locked')
      expect(answer.body.holder.jobId).toBe(accepted[0]!.body.jobId)
    }
  }
}
