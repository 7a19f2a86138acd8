/** The scenarios fast-check draws (and shrinks) for the protocol simulation. */
import fc from 'fast-check'

export const scenarioArbitrary = fc.record({
  clients: fc.integer({ min: 1, max: 6 }),
  resources: fc.integer({ min: 1, max: 3 }),
  jobsPerClient: fc.integer({ min: 1, max: 3 }),
  credits: fc.integer({ min: 1, max: 8 }),
  faultBeforePct: fc.integer({ min: 0, max: 10 }),
  faultAfterPct: fc.integer({ min: 0, max: 10 }),
  delayPct: fc.integer({ min: 0, max: 10 }),
  workerCrashPct: fc.integer({ min: 0, max: 60 }),
  functionCrashPct: fc.integer({ min: 0, max: 15 }),
  duplicatePct: fc.integer({ min: 0, max: 50 }),
  lateStartPct: fc.integer({ min: 0, max: 80 }),
  cancelPct: fc.integer({ min: 0, max: 60 }),
  idempotencyPct: fc.integer({ min: 0, max: 100 }),
  stallPermille: fc.integer({ min: 0, max: 4 }),
  invokeLostPct: fc.integer({ min: 0, max: 20 }),
  clientTimeoutPct: fc.integer({ min: 0, max: 50 }),
  lateClientPct: fc.integer({ min: 0, max: 40 }),
  dieAfterChargePct: fc.integer({ min: 0, max: 30 }),
  operatorGrants: fc.integer({ min: 0, max: 6 }),
})
