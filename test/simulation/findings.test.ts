/**
 * Replays of the scenarios in which the widened simulation found the bugs a
 * review of the protocol reported (the reliability issue's findings 2, 4, 6
 * and 8), and one more it found by itself. Each is one seeded run of
 * protocol.test.ts's model; the comment tells what the seed showed on the
 * code it was found on. A fixed bug makes its run clean.
 */
import { describe, expect, it } from 'vitest'
import { type ScenarioParams, runScenario } from './scenario.ts'

const findings: [string, ScenarioParams][] = [
  // FINDINGS
]

describe('scenarios in which the simulation found money lost or doubled', () => {
  it.each(findings)('%s', async (_name, params) => {
    const result = await runScenario(params, { trace: false })
    expect(result.jobs).toBeGreaterThan(0)
    expect(result.violations).toEqual([])
  }, 60_000)
})
