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

/**
 * Busy accounts: many submits die right after their charge, grants and late
 * clients write the account, failing work shared under one client job id at
 * two prices is refunded several payers in one account write, answers are
 * lost and calls are slow.
 */
export const busyLedgerArbitrary = fc.record({
  clients: fc.integer({ min: 4, max: 6 }),
  resources: fc.integer({ min: 1, max: 3 }),
  jobsPerClient: fc.integer({ min: 2, max: 3 }),
  credits: fc.constant(8),
  faultBeforePct: fc.integer({ min: 0, max: 5 }),
  faultAfterPct: fc.integer({ min: 3, max: 10 }),
  delayPct: fc.integer({ min: 3, max: 10 }),
  workerCrashPct: fc.integer({ min: 0, max: 30 }),
  functionCrashPct: fc.integer({ min: 0, max: 10 }),
  duplicatePct: fc.integer({ min: 0, max: 30 }),
  lateStartPct: fc.integer({ min: 0, max: 30 }),
  cancelPct: fc.integer({ min: 0, max: 30 }),
  idempotencyPct: fc.integer({ min: 0, max: 100 }),
  stallPermille: fc.constant(0),
  invokeLostPct: fc.integer({ min: 0, max: 10 }),
  clientTimeoutPct: fc.integer({ min: 0, max: 50 }),
  lateClientPct: fc.integer({ min: 20, max: 50 }),
  dieAfterChargePct: fc.integer({ min: 30, max: 60 }),
  operatorGrants: fc.integer({ min: 4, max: 8 }),
  sharedWorkPct: fc.integer({ min: 0, max: 40 }),
})

/** Delayed starts: a share of jobs submitted with `delaySeconds`, started by the dispatcher's cron. */
export const delayedStartArbitrary = scenarioArbitrary.chain((rest) =>
  fc.record({ delayedPct: fc.integer({ min: 20, max: 80 }) }).map((extra) => ({ ...rest, ...extra })),
)

/** Retries: a share of jobs of a kind whose attempts fail in planned ways, waits slept or run by the dispatcher's cron. */
export const retryArbitrary = scenarioArbitrary.chain((rest) =>
  fc.record({ retryPct: fc.integer({ min: 30, max: 90 }) }).map((extra) => ({ ...rest, ...extra })),
)

/** Queueing: a share of submits wait in their resource's line instead of a 409 (some delayed too), the dispatcher every minute. */
export const queuedArbitrary = scenarioArbitrary.chain((rest) =>
  fc.record({ queuedPct: fc.integer({ min: 30, max: 90 }), delayedPct: fc.integer({ min: 0, max: 30 }) }).map((extra) => ({ ...rest, ...extra })),
)

/** Durable steps: a share of jobs made of steps, continued in fresh invocations past a short invocation limit, the dispatcher every minute. */
export const stepsArbitrary = scenarioArbitrary.chain((rest) =>
  fc.record({ stepsPct: fc.integer({ min: 40, max: 90 }) }).map((extra) => ({ ...rest, ...extra })),
)

/**
 * A per-account limit on running jobs (1 or 2), with some submits queued on
 * resources, delayed or retried, and sometimes the limit raised or unset mid-run.
 */
export const accountArbitrary = scenarioArbitrary.chain((rest) =>
  fc
    .record({
      accountLimit: fc.integer({ min: 1, max: 2 }),
      queuedPct: fc.integer({ min: 0, max: 60 }),
      delayedPct: fc.integer({ min: 0, max: 30 }),
      retryPct: fc.integer({ min: 0, max: 30 }),
      accountLimitChange: fc.option(fc.record({ to: fc.constantFrom('raised' as const, 'unset' as const), atMinute: fc.integer({ min: 1, max: 90 }) }), { nil: undefined }),
    })
    .map((extra) => ({ ...rest, ...extra })),
)
