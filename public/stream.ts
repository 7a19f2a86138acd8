/**
 * The demo's view of how it is connected to a job's events: the client
 * watches over the SSE stream (EventSource, with the job's watch token) and
 * says when the connection opens and when it is lost; the page shows
 * "reconnecting…" until it is back, and "closed" after the terminal event.
 */
import type { ConnectionState } from '../lib/client/index.ts'

const LABELS: Record<ConnectionState | 'closed', string> = {
  connecting: 'connecting…',
  open: 'live',
  reconnecting: 'reconnecting… (the server cannot be reached)',
  closed: 'closed',
}

export interface ConnectionView {
  show(state: ConnectionState | 'closed'): void
}

export function connectionView(element: HTMLElement): ConnectionView {
  return {
    show(state) {
      element.textContent = LABELS[state]
      element.dataset.connection = state
    },
  }
}
