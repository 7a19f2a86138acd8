/**
 * The protocol simulation's checks are not vacuous: a calm run passes, and
 * each kind of damage done to a finished run (a write landing where it must
 * not, a balance its ledger does not explain, a record that grew back...)
 * makes the right check fail. See protocol.test.ts for the model.
 */
import { describe, expect, it } from 'vitest'
import type { JobState } from '../../lib/core/types.ts'
import { type ScenarioParams, type World, runScenario } from './scenario.ts'
import { stepKey } from '../../lib/jobs/steps.ts'

const calm: ScenarioParams = {
  seed: 3,
  clients: 4,
  resources: 1,
  jobsPerClient: 2,
  credits: 8,
  faultBeforePct: 0,
  faultAfterPct: 0,
  delayPct: 0,
  workerCrashPct: 0,
  functionCrashPct: 0,
  duplicatePct: 0,
  lateStartPct: 0,
  cancelPct: 0,
  idempotencyPct: 0,
  stallPermille: 0,
  invokeLostPct: 0,
  clientTimeoutPct: 0,
  lateClientPct: 0,
  dieAfterChargePct: 0,
  operatorGrants: 0,
}

/** The last landed write of a job's state, and the job's claiming worker. */
function finishedJob(world: World) {
  const { history } = world.store
  const claim = history.find((c) => c.key.startsWith('job/') && c.op === 'create' && c.actor?.kind === 'worker')!
  const last = history.filter((c) => c.key === claim.key).at(-1)!
  return { claim, last, state: JSON.parse(last.after!) as JobState }
}

const tampers: [string, (world: World) => void, RegExp][] = [
  [
    'a worker write landing after its job finished (fencing, one terminal state)',
    (world) => {
      const { claim, last, state } = finishedJob(world)
      const seq = state.log.lastSeq + 1
      const after = { ...state, status: 'running', log: { ...state.log, lastSeq: seq, tail: [...state.log.tail, { seq, type: 'step', data: { i: 9 }, ts: 0 }] } }
      world.store.history.push({ ...last, n: world.store.history.length, actor: claim.actor, op: 'replace', before: last.after, after: JSON.stringify(after) })
    },
    /^I3 .*although the job was (complete|failed|canceled)/,
  ],
  [
    'a job written after it was terminal',
    (world) => {
      const { last, state } = finishedJob(world)
      const status = state.status === 'failed' ? 'complete' : 'failed'
      world.store.history.push({ ...last, n: world.store.history.length, actor: null, op: 'replace', before: last.after, after: JSON.stringify({ ...state, status }) })
    },
    /^I2 .*written .* after it was (complete|failed|canceled)/,
  ],
  [
    'a worker writing while another job holds the lock',
    (world) => {
      const { claim } = finishedJob(world)
      claim.lockAt = JSON.stringify({ state: 'held', jobId: 'job_someoneelse', acquiredAt: 0, expiresAt: 1 })
    },
    /^I1 .*its worker wrote at .* while lock/,
  ],
  [
    'a lock overwritten without a condition',
    (world) => {
      const lock = world.store.history.find((c) => c.key.startsWith('lock/'))!
      world.store.history.push({ ...lock, n: world.store.history.length, op: 'put' })
    },
    /^I1 lock\/.*illegal put/,
  ],
  [
    'a balance that its ledger does not explain',
    (world) => {
      const entry = world.store.entries.get('account/acct-a')!
      const record = JSON.parse(entry.data) as { balance: number }
      entry.data = JSON.stringify({ ...record, balance: record.balance + 1 })
    },
    /^I4 acct-a: balance of acct-a = sum of its ledger/,
  ],
  [
    'an account record that carries reservations again',
    (world) => {
      const commit = world.store.history.find((c) => c.key === 'account/acct-a' && c.after !== null)!
      commit.after = JSON.stringify({ ...JSON.parse(commit.after!), reservations: {} })
    },
    /^I4 account\/acct-a: a committed record of \d+ bytes with fields account apiKeys balance createdAt ledger reservations tokenGeneration updatedAt webhookUrl/,
  ],
  [
    'a job still live after the quiet phase',
    (world) => {
      const { state } = finishedJob(world)
      world.store.entries.set(`queue/${state.jobId}`, { data: '{}', version: '"x"' })
    },
    /^I5 live jobs remain/,
  ],
  [
    'an attempt beyond what the job may have',
    (world) => {
      const { claim } = finishedJob(world)
      claim.after = JSON.stringify({ ...JSON.parse(claim.after!), attempt: 2 })
    },
    /^retry J\d+: attempt 2 of 1/,
  ],
  [
    'a job running again after it went to wait for a retry, under the same attempt (no claim)',
    (world) => {
      const { claim } = finishedJob(world)
      claim.after = JSON.stringify({ ...JSON.parse(claim.after!), status: 'retrying', lease: null, maxAttempts: 2 })
    },
    /^retry J\d+: attempt 1 → 1 \(retrying → (running|complete|failed|canceled)\)/,
  ],
  [
    'a waiting job still there after the quiet phase',
    (world) => {
      const { state } = finishedJob(world)
      world.store.entries.set(`waiting/${state.jobId}`, { data: '{}', version: '"x"' })
    },
    /^I9 waiting jobs remain/,
  ],
  [
    'queued jobs of one resource started out of their line order',
    (world) => {
      // Two jobs claimed one after the other on one resource, given places in the opposite order.
      const claims = world.store.history.filter((c) => c.key.startsWith('job/') && c.op === 'create' && c.actor?.kind === 'worker')
      const lockOf = (c: (typeof claims)[number]) => (JSON.parse(c.after!) as JobState).lockKey
      const first = claims.find((c) => claims.some((d) => d !== c && lockOf(d) === lockOf(c)))!
      const second = claims.find((d) => d !== first && lockOf(d) === lockOf(first))!
      for (const [claim, queueSeq] of [[first, 2], [second, 1]] as const) {
        const jobId = claim.key.slice('job/'.length)
        world.store.history.push({ ...claim, n: world.store.history.length, op: 'replace', key: `waiting/${jobId}`, before: '{}', after: JSON.stringify({ queueSeq }) })
      }
    },
    /^I9 .* \(place 1\) started after .* \(place 2\)/,
  ],
  [
    "a job readable by another account",
    (world) => {
      const { state } = finishedJob(world)
      const entry = world.store.entries.get(`job/${state.jobId}`)!
      entry.data = JSON.stringify({ ...JSON.parse(entry.data), account: 'acct-b' })
    },
    /^I7 acct-b asking for J\d+ got an answer/,
  ],
]

describe('the invariant checks catch what they are meant to', () => {
  it('an undamaged calm run passes', async () => {
    const result = await runScenario(calm, { trace: false })
    expect(result.jobs).toBeGreaterThan(2)
    expect(result.violations).toEqual([])
  })
  it.each(tampers)('%s', async (_name, tamper, pattern) => {
    const result = await runScenario(calm, { trace: false, tamper })
    expect(result.violations.some((v) => pattern.test(v)), result.violations.join('\n')).toBe(true)
  })
})

describe('the step checks catch what they are meant to', () => {
  const stepped: ScenarioParams = { ...calm, stepsPct: 100 }
  /** A step's runs in a calm run with steps (one run each). */
  const someStep = (world: World) => [...world.stepRuns.entries()].find(([, runs]) => runs.length === 1)!

  it('an undamaged calm run with steps passes, and its jobs were continued', async () => {
    const result = await runScenario(stepped, { trace: false })
    expect(result.violations).toEqual([])
    expect(result.coverage.get('continuation claimed')).toBeGreaterThan(0)
  })
  const tampers: [string, (world: World) => void, RegExp][] = [
    ['a step run again after its result was stored', (world) => {
      const [, runs] = someStep(world)
      runs.push({ ...runs[0]!, id: `${runs[0]!.id}-again`, storedAtStart: true })
    }, /^steps .* ran again .* after its result was stored/],
    ['two runs of a step at once', (world) => {
      const [, runs] = someStep(world)
      runs.push({ ...runs[0]!, id: `${runs[0]!.id}-twin`, concurrentWith: [runs[0]!.id] })
    }, /^steps .* ran in .* while .* still ran it/],
    ['a stored step result that no run returned', (world) => {
      const [key] = someStep(world)
      const slash = key.lastIndexOf('/')
      const entry = world.store.entries.get(stepKey(key.slice(0, slash), key.slice(slash + 1)))!
      entry.data = JSON.stringify({ ...JSON.parse(entry.data), result: 'forged' })
    }, /^steps .* stored forged, which no run of it returned/],
  ]
  it.each(tampers)('%s', async (_name, tamper, pattern) => {
    const result = await runScenario(stepped, { trace: false, tamper })
    expect(result.violations.some((v) => pattern.test(v)), result.violations.join('\n')).toBe(true)
  })
})

describe('the per-account limit checks catch', () => {
  const limited: ScenarioParams = { ...calm, clients: 4, jobsPerClient: 3, resources: 3, accountLimit: 1 }

  it('an undamaged calm run under a limit passes, and jobs waited for their account', async () => {
    const result = await runScenario(limited, { trace: false })
    expect(result.violations).toEqual([])
    expect(result.coverage.get('job waited for its account')).toBeGreaterThan(0)
  })
  const tampers: [string, (world: World) => void, RegExp][] = [
    ['more jobs running at once than the limit', (world) => {
      // As if the limit had been lower than what the run allowed (the world's own copy: the scenario is shared).
      ;(world as { params: ScenarioParams }).params = { ...world.params, accountLimit: 0 }
    }, /^I11 acct-.: 1 jobs running at once at #\d+ over its limit 0/],
    ['a slot still held once everything settled', (world) => {
      const key = world.store.keysUnder('slots/')[0]!
      const entry = world.store.entries.get(key)!
      entry.data = JSON.stringify({ ...JSON.parse(entry.data), running: ['job_left_behind'] })
    }, /^I11 slots\/acct-.: slots still held after the quiet phase/],
    ['slots handed out of line order', (world) => {
      // The first two jobs that waited swap places.
      const places = world.store.history.filter((c) => c.key.startsWith('slotline/') && c.op === 'create' && c.after?.includes('jobId'))
      const [a, b] = places
      const swap = a!.after
      a!.after = b!.after
      b!.after = swap
    }, /^I11 acct-.: .* was handed a slot after/],
  ]
  it.each(tampers)('%s', async (_name, tamper, pattern) => {
    const result = await runScenario(limited, { trace: false, tamper })
    expect(result.violations.some((v) => pattern.test(v)), result.violations.join('\n')).toBe(true)
  })
})
