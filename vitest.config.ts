import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

/** The long property runs at full counts: in `npm test`, not in `npm run test:unit`. */
const LONG = ['test/simulation/protocol.test.ts', 'test/fuzz/**/*.test.ts']
/** Each starts a real `netlify dev` (and the browser suite a Chromium). */
const E2E = ['test/e2e/**/*.test.ts', 'test/browser/**/*.test.ts']
/** Only in `npm run test:soak`: the full-length proofs that `npm test` runs short. */
const SOAK = ['test/soak/**/*.test.ts']

export default defineConfig({
  test: {
    testTimeout: 30_000,
    // Most files wait on I/O (HTTP, long-polls, netlify dev), so two at a time even on
    // two cores (vitest's default there is one).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    hookTimeout: 60_000,
    // A test's console output (the product's JSON log lines) is shown only when that test fails.
    silent: 'passed-only',
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: [...LONG, ...E2E, ...SOAK] } },
      { extends: true, test: { name: 'long', include: LONG } },
      { extends: true, test: { name: 'e2e', include: E2E } },
      { extends: true, test: { name: 'soak', include: SOAK } },
    ],
  },
})
