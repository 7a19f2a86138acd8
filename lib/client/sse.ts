/**
 * `watchJob` over the Server-Sent Events stream, with the browser's own
 * `EventSource`: it reconnects by itself (with `Last-Event-ID`, so the server
 * resumes after the last event it delivered) whenever a response closes at
 * the server's time limit or the network drops.
 *
 * `EventSource` cannot send an `Authorization` header, so the credential goes
 * in the URL: only a token (`?token=`), never an API key. It also hides the
 * status of a refused connection: when it gives up without the terminal
 * event (a 401/404, or the 204 of a stream that is over), the watch goes on
 * with the long-poll from the last seq, which says why or finishes the job.
 */
import type { JobEvent, WatchItem } from './types.ts'

/** What the client needs of `EventSource` (the browser's, or one given in its options). */
export interface EventSourceLike {
  readonly readyState: number
  onopen: ((this: any, event: any) => unknown) | null
  onmessage: ((this: any, event: { data: string }) => unknown) | null
  onerror: ((this: any, event: any) => unknown) | null
  addEventListener(type: string, listener: (event: { data: string }) => void): void
  close(): void
}
export type EventSourceConstructor = new (url: string) => EventSourceLike

/** Connection state of a watch, for a "reconnecting" indicator. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting'

const CLOSED = 2
/**
 * The server closes each response at its time limit and EventSource comes
 * back within its `retry`: only a connection still down after this long is
 * reported as reconnecting.
 */
export const RECONNECTING_AFTER_MS = 2000
const TERMINAL = new Set(['done', 'error', 'canceled'])

type Next = { item: WatchItem } | { end: true } | { gaveUp: true }

/**
 * Yields what the stream delivers after `after`, every seq once, until the
 * terminal event. Returns the last seq seen and whether the job ended, so
 * the caller can go on by long-poll when the stream gave up.
 */
export async function* watchByEventSource(
  EventSource: EventSourceConstructor,
  url: string,
  after: number,
  signal: AbortSignal | undefined,
  onConnection: ((state: ConnectionState) => void) | undefined,
): AsyncGenerator<WatchItem, { lastSeq: number; ended: boolean }, undefined> {
  signal?.throwIfAborted()
  const queue: Next[] = []
  let wake: (() => void) | null = null
  const push = (next: Next) => {
    queue.push(next)
    wake?.()
  }
  const source = new EventSource(url)
  let lost: ReturnType<typeof setTimeout> | undefined
  let reported: ConnectionState | null = null
  const report = (state: ConnectionState) => {
    if (state !== reported) onConnection?.((reported = state))
  }
  source.onopen = () => {
    clearTimeout(lost)
    lost = undefined
    report('open')
  }
  source.onmessage = (message) => push({ item: JSON.parse(message.data) as JobEvent })
  source.addEventListener('truncated', (message) => push({ item: { type: 'truncated', truncated: JSON.parse(message.data) } }))
  source.addEventListener('end', () => push({ end: true }))
  source.onerror = () => {
    if (source.readyState === CLOSED) push({ gaveUp: true })
    else lost ??= setTimeout(() => report('reconnecting'), RECONNECTING_AFTER_MS)
  }
  const onAbort = () => wake?.()
  signal?.addEventListener('abort', onAbort)
  let lastSeq = after
  try {
    for (;;) {
      if (signal?.aborted) throw signal.reason
      const next = queue.shift()
      if (!next) {
        await new Promise<void>((resolve) => (wake = resolve))
        wake = null
        continue
      }
      if ('end' in next) return { lastSeq, ended: true }
      if ('gaveUp' in next) return { lastSeq, ended: false }
      const { item } = next
      if (item.seq !== undefined) {
        if (item.seq <= lastSeq) continue // never twice, whatever the server resends
        lastSeq = item.seq
      }
      yield item
      if (item.seq !== undefined && TERMINAL.has(item.type)) return { lastSeq, ended: true }
    }
  } finally {
    clearTimeout(lost)
    source.close()
    signal?.removeEventListener('abort', onAbort)
  }
}
