import { it } from 'vitest'
import { runScenario } from './simulation/scenario.ts'
it('debug', async () => {
  const r = await runScenario({"seed":-113114848,"clients":6,"resources":1,"jobsPerClient":2,"credits":4,"faultBeforePct":10,"faultAfterPct":6,"delayPct":8,"workerCrashPct":27,"functionCrashPct":13,"duplicatePct":13,"lateStartPct":3,"cancelPct":1,"idempotencyPct":1,"stallPermille":0,"invokeLostPct":0,"clientTimeoutPct":1,"lateClientPct":9,"dieAfterChargePct":1,"operatorGrants":3,"accountLimit":1,"queuedPct":30,"delayedPct":3,"retryPct":1,"accountLimitChange":{"to":"raised","atMinute":17}} as any, { trace: false })
  console.log(r.violations)
  const lines = r.store.history.filter((c) => c.key === 'lock/acct-a:res:r0' && c.step >= 1700 && c.step <= 2300).map((c) => `#${c.step} ${c.actor?.name} ${c.op} ${c.before} -> ${c.after} prevExists=${c.previousHolderExists}`)
  console.log(lines.join('\n'))
}, 60000)
