/** What the dispatcher does with each type of due entry. */
import type { DueHandlers } from './dispatcher.ts'
import { startDelayedJob } from './start.ts'

export const dueHandlers: DueHandlers = {
  start: startDelayedJob,
  /** Filed for every waiting job at submit: see schedule/start.ts. */
  guard: startDelayedJob,
}
