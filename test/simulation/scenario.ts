/**
 * One simulated run of the whole protocol: accounts, clients, the submit,
 * worker, feed, cancel and reaper functions, all using the real lib code over
 * the simulated store and clock. See protocol.test.ts for the model and the
 * invariants; world.ts holds its state, actors.ts its clients; this file runs
 * the phases.
 */
import { createAccount, grantCredits } from '../../lib/credits/index.ts'
import { reap } from '../../lib/reaper/reap.ts'
import { runDispatcher } from '../../lib/schedule/dispatcher.ts'
import { dueHandlers } from '../../lib/schedule/handlers.ts'
import { EXPIRY_BUCKET_MS } from '../../lib/storage/keys.ts'
import { submitJob } from '../../lib/jobs/submit.ts'
import { client, planJobs, topUp } from './actors.ts'
import { type CheckReport, checkInvariants, checkRetention } from './invariants.ts'
import { installDeterminism } from './scheduler.ts'
import { ACCOUNTS, REAPER_PERIOD_MS, type RunResult, type ScenarioParams, World, describe, transient } from './world.ts'

export type { RunResult, ScenarioParams } from './world.ts'
export { World } from './world.ts'

// ---- the run ---------------------------------------------------------------

/** Runs until `until` even when everyone waits, so the reaper's cron keeps firing. */
async function keepTime(world: World, until: number) {
  const { sim } = world
  sim.spawn({ name: 'operator', kind: 'client' }, async (self) => {
    while (sim.now < until) await sim.sleep(self, 60_000)
  })
  await sim.run({ stopAt: until + 60_000 })
}

export async function runScenario(
  params: ScenarioParams,
  options: { trace?: boolean; /** Damages the outcome before the checks (to show they catch it). */ tamper?: (world: World) => void } = {},
): Promise<RunResult> {
  const world = new World(params, options.trace ?? true)
  const { sim } = world
  const restore = installDeterminism(sim)
  let report: CheckReport = { violations: [], checks: 0 }
  try {
    sim.auto = true
    for (const account of ACCOUNTS) await createAccount(world.directDeps().store, world.directDeps().clock, account, params.credits)
    sim.auto = false

    for (let c = 0; c < params.clients; c++) {
      const account = ACCOUNTS[c % ACCOUNTS.length]!
      const jobs = planJobs(world, c)
      sim.spawn({ name: `client(c${c})`, kind: 'client' }, (self) => client(world, self, c, account, jobs))
    }
    const origin = sim.now
    const cron = sim.cron('reaper', REAPER_PERIOD_MS, sim.now + world.rng.int(0, REAPER_PERIOD_MS), () => {
      void world.fn('reaper', 'reaper', (fn) => reap(world.deps(fn))).then((outcome) => {
        if (outcome.error && !transient(outcome)) world.violation(`reaper threw ${describe(outcome.error)}`)
      })
      // Around the hour, as the first reservations expire, a billing run tops up each account.
      const elapsed = sim.now - origin
      if (params.operatorGrants > 0 && elapsed >= 55 * 60_000 && elapsed <= 80 * 60_000) {
        for (const account of ACCOUNTS) sim.spawn({ name: `operator(${account})`, kind: 'client' }, (self) => topUp(world, self, account))
      }
    })
    // The dispatcher every minute, in runs with delayed starts, retries, queueing or steps (others keep their random draws).
    const dispatcherCron = params.delayedPct || params.retryPct || params.queuedPct || params.stepsPct || params.accountLimit
      ? sim.cron('dispatcher', 60_000, sim.now + world.rng.int(0, 60_000), () => {
          void world.fn('reaper', 'dispatcher', (fn) => runDispatcher(world.deps(fn), dueHandlers)).then((outcome) => {
            if (outcome.error && !transient(outcome)) world.violation(`dispatcher threw ${describe(outcome.error)}`)
            for (let i = 0; i < (outcome.value?.handled ?? 0); i++) world.count('due entry handled by the dispatcher')
            for (let i = 0; i < (outcome.value?.itemsFailed ?? 0); i++) world.count('due entry failed, filed again')
          })
        })
      : null

    // An operator raises or unsets ACCOUNT_MAX_RUNNING while jobs run and wait.
    const change = params.accountLimitChange
    if (change && params.accountLimit !== undefined) {
      sim.spawn({ name: 'operator(limit)', kind: 'client' }, async (self) => {
        await sim.sleep(self, change.atMinute * 60_000)
        world.accountLimitChangedAt = world.store.history.length
        world.settings.accountMaxRunning = change.to === 'unset' ? null : params.accountLimit! + 1
        sim.log(`--- ACCOUNT_MAX_RUNNING ${change.to === 'unset' ? 'unset' : `raised to ${world.settings.accountMaxRunning}`} ---`)
      })
    }

    // Phase 1: everything at once, with faults, crashes and stalls.
    const started = sim.now
    await sim.run({ stopAt: started + 4 * 3600_000 })

    // Phase 2: quiet. No faults, no crashes; the reaper keeps running on its
    // schedule; pollers keep polling. Past one lock TTL plus one reaper period
    // (plus one more period for the first run to come), nothing may be live.
    sim.faults = { before: 0, after: 0, delay: 0 }
    sim.stallRate = 0
    world.crashes = false
    const quietFrom = sim.now
    const period = world.settings.lockTtlMs + 2 * REAPER_PERIOD_MS
    let horizon = quietFrom + period
    sim.log('--- quiet phase: no faults, no crashes ---')
    await keepTime(world, horizon)
    // Under an account limit a waiting job starts only as another ends: one more such period per
    // turn the line may still need (every job the clients may have made, waiting in one line).
    const turns = params.accountLimit ? Math.ceil((2 * params.clients * params.jobsPerClient) / params.accountLimit) : 0
    for (let turn = 0; turn < turns && world.store.keysUnder('queue/').length + world.store.keysUnder('waiting/').length > 0; turn++) {
      horizon += period
      await keepTime(world, horizon)
    }

    // Phase 3: a new job on every resource that was used can start and finish.
    sim.log('--- fresh jobs on every used resource ---')
    const used = new Set<string>()
    for (const commit of world.store.history) {
      if (commit.key.startsWith('lock/')) used.add(commit.key.slice('lock/'.length))
    }
    sim.auto = true
    for (const account of ACCOUNTS) await grantCredits(world.directDeps().store, world.directDeps().clock, account, 10, 'fresh jobs')
    sim.auto = false
    for (const lockKey of [...used].sort()) {
      const [account, , resource] = lockKey.split(':') as [string, string, string]
      const fresh: World['freshJobs'][number] = { account, resource, jobId: null }
      world.freshJobs.push(fresh)
      sim.spawn({ name: `fresh(${lockKey})`, kind: 'client' }, async () => {
        const outcome = await world.fn('submit', `submit(fresh ${lockKey})`, (fn) =>
          submitJob(world.deps(fn), account, { kind: 'sim_task', input: { resource, steps: 1, stepMs: 0, fail: 'none', failAt: 1 } }, null),
        )
        if (outcome.value) fresh.jobId = outcome.value.body.jobId
        else world.violation(`a new job on ${lockKey} after everything settled was refused: ${outcome.died ?? describe(outcome.error)}`)
      })
    }
    await keepTime(world, sim.now + 30 * 60_000)
    cron.stop()
    dispatcherCron?.stop()

    sim.auto = true
    options.tamper?.(world)
    report = await checkInvariants(world, { quietFrom, horizon })
    sim.auto = false

    // Phase 4: retention. Far ahead, the reaper deletes every finished job.
    sim.now += world.settings.retentionMs + 3 * EXPIRY_BUCKET_MS
    sim.log('--- past retention ---')
    for (let run = 0; run < 2; run++) {
      void world.fn('reaper', 'reaper(retention)', (fn) => reap(world.deps(fn)))
      await sim.run()
      sim.now += REAPER_PERIOD_MS
    }
    sim.auto = true
    const retention = await checkRetention(world, report.refundsDue ?? new Map())
    report = { violations: [...report.violations, ...retention.violations], checks: report.checks + retention.checks }
  } catch (error) {
    world.violation(`the run itself failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  } finally {
    restore()
    sim.auto = false
  }
  return {
    params,
    stats: sim.stats,
    violations: [...world.violations, ...report.violations],
    checks: report.checks,
    trace: sim.trace,
    jobs: world.store.history.filter((c) => c.op === 'create' && c.key.startsWith('queue/')).length,
    coverage: world.coverage,
    store: world.store,
  }
}
