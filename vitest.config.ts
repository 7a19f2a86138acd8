import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'
import { BaseSequencer, type TestSpecification } from 'vitest/node'

/**
 * The long property runs: a quarter of their full counts in `npm test`, the full counts
 * in `npm run test:soak`, left out of `npm run test:unit`. SIM_RUNS / FUZZ_RUNS set
 * by hand win everywhere.
 */
const LONG = ['test/simulation/protocol.test.ts', 'test/fuzz/**/*.test.ts']
const SHORT_COUNTS = {
  SIM_RUNS: process.env.SIM_RUNS ?? '375',
  SIM_BUSY_RUNS: process.env.SIM_BUSY_RUNS ?? '75',
  SIM_DELAYED_RUNS: process.env.SIM_DELAYED_RUNS ?? '50',
  SIM_RETRY_RUNS: process.env.SIM_RETRY_RUNS ?? '50',
  SIM_QUEUED_RUNS: process.env.SIM_QUEUED_RUNS ?? '50',
  SIM_STEPS_RUNS: process.env.SIM_STEPS_RUNS ?? '50',
  SIM_ACCOUNT_RUNS: process.env.SIM_ACCOUNT_RUNS ?? '100',
  FUZZ_RUNS: process.env.FUZZ_RUNS ?? '120',
}
/**
 * Counted proofs in the `unit` project, at fewer trials there (so in `npm test` and
 * `npm run test:unit`) and at their full counts in `npm run test:soak`: the sandbox's
 * fidelity trials (50 and 200 at full count) and the scale simulation's minutes (30).
 */
const COUNTED = ['test/sandbox-fidelity.test.ts', 'test/simulation/scale.test.ts']
const UNIT_COUNTS = {
  SANDBOX_TRIALS: process.env.SANDBOX_TRIALS ?? '20',
  SANDBOX_SEQUENTIAL_TRIALS: process.env.SANDBOX_SEQUENTIAL_TRIALS ?? '60',
  SCALE_MINUTES: process.env.SCALE_MINUTES ?? '10',
}
/** Each starts a real `netlify dev` (and the browser suite a Chromium). */
const E2E = ['test/e2e/**/*.test.ts', 'test/browser/**/*.test.ts']
/** Only in `npm run test:soak` (with LONG and COUNTED at full counts): the full-length proofs that `npm test` runs short. */
const SOAK = ['test/soak/**/*.test.ts']

/**
 * The long runs start first, then the `netlify dev` suites (mostly waiting on their
 * server and browser), so the short files fill the workers around them.
 */
const RANK: Record<string, number> = { long: 0, e2e: 1 }
class LongFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]) {
    const rank = (file: TestSpecification) => RANK[file.project.name] ?? 2
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b))
  }
}

export default defineConfig({
  test: {
    testTimeout: 30_000,
    // Most files wait on I/O (HTTP, long-polls, timers), so three at a time even on
    // two cores (vitest's default there is one).
    maxWorkers: Math.max(3, availableParallelism() - 1),
    hookTimeout: 60_000,
    // A test's console output (the product's JSON log lines) is shown only when that test fails.
    silent: 'passed-only',
    sequence: { sequencer: LongFirst },
    projects: [
      // Workers are reused from file to file (each shared module loads once per worker, not once
      // per file: a third of the project's CPU time); test/support/file-isolation.ts puts back
      // what a file changed in the process (environment, test kinds, spies, fake timers).
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: [...LONG, ...E2E, ...SOAK],
          env: UNIT_COUNTS,
          isolate: false,
          setupFiles: ['test/support/file-isolation.ts'],
        },
      },
      { extends: true, test: { name: 'long', include: LONG, env: SHORT_COUNTS } },
      // In the same pool as the others: a suite through `netlify dev` spends most of its
      // time waiting on the server and the browser, so the other files run beside it.
      // One Chromium and one shared `netlify dev` for the suites that can share them (test/e2e/shared.ts).
      { extends: true, test: { name: 'e2e', include: E2E, globalSetup: ['test/e2e/global-setup.ts'] } },
      { extends: true, test: { name: 'soak', include: [...SOAK, ...LONG, ...COUNTED] } },
    ],
  },
})
