import type { Config } from '@netlify/functions'
import { reap } from '../../lib/reaper/reap.ts'
import { appFor, log } from '../app.ts'

/** Every 5 minutes: fail jobs whose worker died, free their locks, delete what is past retention. */
export default async (req: Request) => {
  const report = await reap(appFor(req))
  log.info('reaper run', { ...report })
  return Response.json(report)
}

export const config: Config = { schedule: '*/5 * * * *' }
