/**
 * Invariant 10 for durable steps (jobs of `sim_steps`), from the runs of
 * each step's fn that the kind recorded (world.ts) and the stored results:
 * - a stored step is never run again: no run starts once its result is stored;
 * - never two runs of one step at once: a run starts only when every earlier
 *   one returned or its worker ended (died, killed), so a second run means
 *   the first died before its result was stored (at least once, never twice
 *   side by side), which a continuation claimed twice would break;
 * - no run is left running by a worker that returned (parallel branches are
 *   waited for before a hand-over, a retry or the end);
 * - no run starts in a worker invoked after a cancel of the job was answered
 *   200 or 202 (a worker already running stops at its next check);
 * - the stored result is one a real run of fn returned;
 * - a complete job's result is built from the stored results;
 * - `step_completed` names each step at most once, and only a stored one.
 */
import { jobLog, readEvents } from '../../lib/events/log.ts'
import { stepKey } from '../../lib/jobs/steps.ts'
import type { JobState } from '../../lib/core/types.ts'
import { aliasIds as A } from './sim-store.ts'
import type { World } from './world.ts'

export async function checkSteps(world: World, finals: Map<string, JobState>, expect: (condition: boolean, message: () => string) => void) {
  const store = world.directDeps().store
  for (const [jobId, final] of finals) {
    if (final.kind !== 'sim_steps') continue
    const name = A(jobId)
    const storedResult = (step: string) => {
      const blob = world.store.entries.get(stepKey(jobId, step))
      return blob ? (JSON.parse(blob.data) as { result: unknown }).result : undefined
    }
    for (const [key, runs] of world.stepRuns) {
      if (!key.startsWith(`${jobId}/`)) continue
      const step = key.slice(jobId.length + 1)
      for (const run of runs) {
        expect(!run.storedAtStart, () => `steps ${name}: ${step} ran again (${A(run.id)}) after its result was stored`)
        expect(!run.afterCancel, () => `steps ${name}: ${step} started in ${A(run.id)} by a worker invoked after a cancel of the job was answered`)
        // A worker returns only after its step fns ended: a hand-over or a retry must not leave one running.
        expect(run.done || !run.actor.finished, () => `steps ${name}: ${step} still ran in ${A(run.id)} when its worker returned`)
        expect(run.concurrentWith.length === 0, () => `steps ${name}: ${step} ran in ${A(run.id)} while ${A(run.concurrentWith.join(', '))} still ran it`)
      }
      const stored = storedResult(step)
      if (stored !== undefined) expect(runs.some((run) => run.id === stored), () => `steps ${name}: ${step} stored ${A(String(stored))}, which no run of it returned`)
      if (runs.length > 1) world.count('step run again after its first run died before storing')
    }
    world.count(`steps job ${final.status}${final.error ? ` (${final.error.code})` : ''}`)
    if (final.status === 'complete') {
      const { runs } = final.result as { runs: string[] }
      runs.forEach((result, i) => expect(storedResult(`s${i + 1}`) === result, () => `steps ${name}: result of s${i + 1} is ${A(result)}, stored ${A(String(storedResult(`s${i + 1}`)))}`))
      world.count(`steps job complete after ${final.invocation ?? 1} invocation(s)`.replace(/after \d{2,} /, 'after 10+ '))
    }
    const { events } = await readEvents(store, jobLog(jobId), final.log, 0, 1000)
    const completed = events.filter((e) => e.type === 'step_completed').map((e) => (e.data as { name: string }).name)
    expect(new Set(completed).size === completed.length, () => `steps ${name}: step_completed repeated: ${completed.join(',')}`)
    for (const step of completed) expect(storedResult(step) !== undefined, () => `steps ${name}: step_completed for ${step}, which is not stored`)
  }
}
