/**
 * One job, watched, as a framework-neutral store: `subscribe(listener)` and
 * `getSnapshot()` are what React's `useSyncExternalStore` takes, and work as
 * well for Vue, Svelte or plain DOM code.
 *
 * The watch starts with the first subscriber and stops when the last one
 * leaves (React's strict mode subscribes twice); it resumes after the last
 * event it had, so nothing is delivered twice. The snapshot is a new object
 * only when something changed.
 */
import type { ConnectionState } from './sse.ts'
import type { JobEvent, JobStatus, PublicError, WatchItem } from './types.ts'

export interface JobSnapshot {
  jobId: string
  /** Null until the first event says (`started` → running, then the terminal event). */
  status: JobStatus | null
  progress: { message: string; percent: number | null } | null
  /** The newest events, oldest first (at most `keepEvents`). */
  events: readonly JobEvent[]
  /** `data.result` of the `done` event. */
  result: unknown
  /** `data.error` of the `error` event. */
  error: PublicError | null
  connection: ConnectionState | 'closed'
  /** True once the terminal event arrived: the watch is over. */
  done: boolean
  /** Why the watch stopped without the terminal event (an ApiError: 401, 404…). */
  failure: Error | null
}

export interface JobStore {
  subscribe(listener: () => void): () => void
  getSnapshot(): JobSnapshot
}

/** What the store needs of a client: its `watchJob`. */
export interface Watcher {
  watchJob(
    jobId: string,
    options: { after?: number; signal?: AbortSignal; transport?: 'sse' | 'poll'; onConnection?: (state: ConnectionState) => void },
  ): AsyncIterable<WatchItem>
}

export function createJobStore(client: Watcher, jobId: string, options: { transport?: 'sse' | 'poll'; keepEvents?: number } = {}): JobStore {
  const keepEvents = options.keepEvents ?? 1000
  const listeners = new Set<() => void>()
  let snapshot: JobSnapshot = { jobId, status: null, progress: null, events: [], result: undefined, error: null, connection: 'closed', done: false, failure: null }
  let lastSeq = 0
  let running: AbortController | null = null

  const update = (change: Partial<JobSnapshot>) => {
    snapshot = { ...snapshot, ...change }
    for (const listener of [...listeners]) listener()
  }

  const apply = (event: JobEvent) => {
    lastSeq = event.seq
    const change: Partial<JobSnapshot> = { events: [...snapshot.events, event].slice(-keepEvents) }
    const data = (event.data ?? {}) as Record<string, any>
    if (event.type === 'started') change.status = 'running'
    else if (event.type === 'retry_scheduled') change.status = 'retrying'
    else if (event.type === 'progress') change.progress = { message: String(data.message ?? ''), percent: data.percent ?? null }
    else if (event.type === 'done') Object.assign(change, { status: 'complete', result: data.result, done: true })
    else if (event.type === 'error') Object.assign(change, { status: 'failed', error: data.error ?? null, done: true })
    else if (event.type === 'canceled') Object.assign(change, { status: 'canceled', done: true })
    else if (snapshot.status === null) change.status = 'running'
    update(change)
  }

  const start = () => {
    if (running || snapshot.done) return
    const controller = new AbortController()
    running = controller
    update({ connection: 'connecting', failure: null })
    void (async () => {
      try {
        const items = client.watchJob(jobId, {
          after: lastSeq,
          signal: controller.signal,
          ...(options.transport ? { transport: options.transport } : {}),
          onConnection: (connection) => update({ connection }),
        })
        for await (const item of items) {
          if (controller.signal.aborted) break // a batch already fetched would go on yielding
          if (item.seq !== undefined && item.seq > lastSeq) apply(item)
        }
      } catch (error) {
        if (!controller.signal.aborted) update({ failure: error instanceof Error ? error : new Error(String(error)) })
      } finally {
        // A resubscribe may have started the next watch already: leave its state alone.
        if (running === controller || running === null) {
          running = null
          update({ connection: 'closed' })
        }
      }
    })()
  }

  return {
    subscribe(listener) {
      listeners.add(listener)
      start()
      return () => {
        listeners.delete(listener)
        if (listeners.size === 0) {
          running?.abort()
          running = null
        }
      }
    },
    getSnapshot: () => snapshot,
  }
}
