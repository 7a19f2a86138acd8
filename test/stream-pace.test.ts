/**
 * How often watchers read storage, and how late they see events, on
 * simulated time: a job on the real local Blobs server whose events land at
 * seeded random times (exponential gaps, mean 1 s), watched by the SSE stream
 * (closing at its 25 s limit and reconnecting) and by the long-poll. Reads are
 * the watcher's own, counted at the storage port; times are simulated, so
 * every figure repeats exactly.
 */
import { describe, expect, it } from 'vitest'
import { STORE_NAME } from '../netlify/app.ts'
import { useBlobs } from './support/blobs.ts'
import { SIM_START, poissonTimes, simulateJob } from './support/watch-sim.ts'
import { STREAM_DEFAULTS, delays, percentile, readsBetween, watchByPoll, watchByStream } from './support/watchers.ts'

const blobs = useBlobs()
const MINUTE = 60_000
const SEEDS = [1, 2, 3]

const activeJob = (seed: number) => simulateJob(blobs.port(STORE_NAME), { eventTimes: poissonTimes(seed, 1000, 61_000), finishAt: 61_000 })
/** Started, then silent for 75 s: the minute from 10 s to 70 s is idle. */
const idleJob = () => simulateJob(blobs.port(STORE_NAME), { eventTimes: [], finishAt: 75_000 })
const seqs = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

describe('the SSE stream on simulated time', () => {
  it.each(SEEDS)('reads storage at most 120 times in an active minute, across reconnects, and delivers every event once (seed %i)', async (seed) => {
    const sim = await activeJob(seed)
    const watch = await watchByStream(sim, blobs.port(STORE_NAME))
    expect(watch.ended).toBe(true)
    expect(watch.seen.map((s) => s.seq)).toEqual(seqs(sim.writtenAt.size))
    expect(watch.requests).toBeGreaterThanOrEqual(3) // closed at 25 s and 50 s, resumed by Last-Event-ID each time
    expect(readsBetween(watch, SIM_START, SIM_START + MINUTE)).toBeLessThanOrEqual(120)
    // The pacing alone (no network): most events within half a second.
    const late = delays(watch, sim)
    expect(percentile(late, 50)).toBeLessThanOrEqual(350)
    expect(percentile(late, 90)).toBeLessThanOrEqual(600)
  })

  it('reads storage at most 30 times in an idle minute, and sends a heartbeat every 10 s', async () => {
    const sim = await idleJob()
    const watch = await watchByStream(sim, blobs.port(STORE_NAME))
    expect(watch.ended).toBe(true)
    expect(readsBetween(watch, SIM_START + 10_000, SIM_START + 70_000)).toBeLessThanOrEqual(30)
    const [first] = watch.frames
    expect(first!.filter((f) => f === ': heartbeat')).toHaveLength(2)
  })

  it('closes each response by its limit, heartbeats included, and never sleeps past it', async () => {
    const sim = await idleJob()
    const watch = await watchByStream(sim, blobs.port(STORE_NAME), { ...STREAM_DEFAULTS, limitMs: 7_000, heartbeatMs: 3_000 })
    expect(watch.spans.length).toBeGreaterThanOrEqual(10)
    for (const { openedAt, closedAt } of watch.spans.slice(0, -1)) expect(closedAt - openedAt).toBe(7_000)
    for (const frames of watch.frames.slice(1, -1)) {
      expect(frames[0]).toBe(`retry: ${STREAM_DEFAULTS.retryMs}`)
      expect(frames.filter((f) => f === ': heartbeat')).toHaveLength(2) // at 3 s and 6 s; the one due at 9 s would pass the limit
    }
    expect(watch.seen.map((s) => s.seq)).toEqual([1, 2])
  })
})

describe('a job that waits for its worker', () => {
  it.each(['stream', 'poll'] as const)('is watched at the active pace while just queued, so its start shows at once (%s)', async (transport) => {
    const sim = await simulateJob(blobs.port(STORE_NAME), { claimAt: 1500, eventTimes: [2000, 3000], finishAt: 4000 })
    const watch = transport === 'stream' ? await watchByStream(sim, blobs.port(STORE_NAME)) : await watchByPoll(sim, blobs.port(STORE_NAME))
    expect(watch.seen.map((s) => s.seq)).toEqual([1, 2, 3, 4])
    expect(delays(watch, sim)[0]).toBeLessThanOrEqual(600) // at the idle pace a check comes every ~2.9 s
  })
})

describe('the long-poll on simulated time', () => {
  it.each(SEEDS)('while events flow, sees each within a second of its write (the old back-off reached 2 s) (seed %i)', async (seed) => {
    const sim = await activeJob(seed)
    const watch = await watchByPoll(sim, blobs.port(STORE_NAME))
    expect(watch.seen.map((s) => s.seq)).toEqual(seqs(sim.writtenAt.size))
    expect(Math.max(...delays(watch, sim))).toBeLessThanOrEqual(1000)
  })

  it('reads storage at most 30 times in an idle minute', async () => {
    const sim = await idleJob()
    const watch = await watchByPoll(sim, blobs.port(STORE_NAME))
    expect(watch.ended).toBe(true)
    expect(readsBetween(watch, SIM_START + 10_000, SIM_START + 70_000)).toBeLessThanOrEqual(30)
  })
})
