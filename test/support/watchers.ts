/**
 * Watchers of a simulated job (support/watch-sim.ts), as a client would run
 * them: an SSE stream that reconnects after each close, and a long-poll loop.
 * Each records when it saw every event and when it read storage.
 */
import { DEFAULT_SETTINGS } from '../../lib/core/deps.ts'
import { readFeed } from '../../lib/jobs/read.ts'
import { DEFAULT_HEARTBEAT_MS, DEFAULT_RETRY_MS, type StreamOptions, openJobStream } from '../../lib/jobs/stream.ts'
import type { BlobPort } from '../../lib/storage/port.ts'
import { hookedStore } from './hooked-store.ts'
import { SIM_ACCOUNT, type SimulatedJob } from './watch-sim.ts'

export interface WatchRecord {
  /** Every event seen, in order, with the simulated time it reached the watcher. */
  seen: { seq: number; at: number }[]
  /** Simulated times of the watcher's storage reads. */
  reads: number[]
  /** Responses opened (streams or polls). */
  requests: number
  /** Raw frames of every stream response, in order. */
  frames: string[][]
  /** Simulated open and close time of every stream response. */
  spans: { openedAt: number; closedAt: number }[]
  /** How the watch ended: the end marker / a 204 / the feed's done. */
  ended: boolean
}

export const STREAM_DEFAULTS: StreamOptions = { limitMs: DEFAULT_SETTINGS.streamLimitMs, heartbeatMs: DEFAULT_HEARTBEAT_MS, retryMs: DEFAULT_RETRY_MS }

function counting(store: BlobPort, sim: SimulatedJob, reads: number[]) {
  return hookedStore(store, (op) => {
    if (op === 'read') reads.push(sim.clock.now())
  })
}

/** Follows the job over SSE responses until the end marker (or `untilMs` of simulated time). */
export async function watchByStream(sim: SimulatedJob, store: BlobPort, options: StreamOptions = STREAM_DEFAULTS, untilMs = Infinity): Promise<WatchRecord> {
  const record: WatchRecord = { seen: [], reads: [], requests: 0, frames: [], spans: [], ended: false }
  const deps = sim.deps(counting(store, sim, record.reads))
  const stopAt = sim.clock.now() + untilMs
  let after = 0
  while (sim.clock.now() < stopAt) {
    record.requests++
    const openedAt = sim.clock.now()
    const stream = await openJobStream(deps, SIM_ACCOUNT, sim.jobId, after, options)
    if (stream.ended) {
      record.ended = true
      break
    }
    const frames: string[] = []
    record.frames.push(frames)
    const decoder = new TextDecoder()
    const reader = stream.body.getReader()
    for (;;) {
      const { done, value: chunk } = await reader.read()
      if (done) break
      for (const text of decoder.decode(chunk, { stream: true }).split('\n\n').filter(Boolean)) {
        frames.push(text)
        const id = /^id: (\d+)$/m.exec(text)
        if (id) {
          after = Number(id[1])
          record.seen.push({ seq: after, at: sim.clock.now() })
        }
        if (/^event: end$/m.test(text)) record.ended = true
      }
      if (sim.clock.now() >= stopAt) {
        await reader.cancel()
        break
      }
    }
    record.spans.push({ openedAt, closedAt: sim.clock.now() })
    if (record.ended) break
    await sim.clock.sleep(options.retryMs) // EventSource waits `retry` before it reconnects
  }
  return record
}

/** Follows the job with the long-poll (`wait=20`) until `done` (or `untilMs` of simulated time). */
export async function watchByPoll(sim: SimulatedJob, store: BlobPort, untilMs = Infinity): Promise<WatchRecord> {
  const record: WatchRecord = { seen: [], reads: [], requests: 0, frames: [], spans: [], ended: false }
  const deps = sim.deps(counting(store, sim, record.reads))
  const stopAt = sim.clock.now() + untilMs
  let after = 0
  while (sim.clock.now() < stopAt) {
    record.requests++
    const feed = await readFeed(deps, SIM_ACCOUNT, sim.jobId, { after, limit: 100, waitSeconds: 20 })
    for (const event of feed.events) record.seen.push({ seq: event.seq, at: sim.clock.now() })
    after = feed.next
    if (feed.done) {
      record.ended = true
      break
    }
  }
  return record
}

/** Reads whose time falls in [from, to). */
export const readsBetween = (record: WatchRecord, from: number, to: number) => record.reads.filter((at) => at >= from && at < to).length

/** Delivery delay of each event: when the watcher saw it minus when it was written. */
export const delays = (record: WatchRecord, sim: SimulatedJob) => record.seen.map(({ seq, at }) => at - sim.writtenAt.get(seq)!)

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN
}
