import type { Config } from '@netlify/functions'
import { runDispatcher } from '../../lib/schedule/dispatcher.ts'
import { dueHandlers } from '../../lib/schedule/handlers.ts'
import { appFor, log } from '../app.ts'

/** Every minute: start what is due (delayed jobs). Work is bounded per run; the rest waits for the next. */
export default async (req: Request) => {
  const report = await runDispatcher(appFor(req), dueHandlers)
  if (report.handled + report.deferred + report.itemsFailed > 0 || report.unfinished) log.info('dispatcher run', { ...report })
  return Response.json(report)
}

export const config: Config = { schedule: '* * * * *' }
