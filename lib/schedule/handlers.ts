/** What the dispatcher does with each type of due entry. */
import type { DueHandlers } from './dispatcher.ts'
import { startNextAttempt } from './retry.ts'
import { callNextInvocation } from './continue.ts'
import { startDelayedJob } from './start.ts'
import { dispatchJobWebhook } from '../webhooks/delivery.ts'

export const dueHandlers: DueHandlers = {
  start: startDelayedJob,
  retry: startNextAttempt,
  webhook: dispatchJobWebhook,
  /** Filed for every waiting job at submit: see schedule/start.ts. */
  guard: startDelayedJob,
  continue: callNextInvocation,
}
