/** What the dispatcher does with each type of due entry. */
import type { DueHandlers } from './dispatcher.ts'
import { startDelayedJob } from './start.ts'
import { deliverJobWebhook } from '../webhooks/delivery.ts'

export const dueHandlers: DueHandlers = {
  start: startDelayedJob,
  webhook: deliverJobWebhook,
}
