/**
 * Runs the client's `watchJob` in a Node started with `--experimental-eventsource`
 * (Node's own EventSource), so the `sse` transport is tested with a real
 * EventSource. Prints one JSON line per item, connection state and outcome.
 *
 *   node --experimental-eventsource test/support/watch-client.ts <baseUrl> <token> <jobId> [transport]
 */
import { createClient } from '../../lib/client/index.ts'

const [baseUrl, token, jobId, transport] = process.argv.slice(2) as [string, string, string, 'sse' | 'poll' | undefined]
const print = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`)
// Node's EventSource waits for its reconnect on a timer that does not hold the process open.
const keepAlive = setInterval(() => {}, 1000)
const client = createClient({ baseUrl, token, backoff: { baseMs: 50, maxMs: 500 } })
try {
  for await (const item of client.watchJob(jobId, { ...(transport ? { transport } : {}), onConnection: (state) => print({ connection: state }) })) {
    print({ item })
  }
  print({ outcome: 'ended' })
} catch (error) {
  print({ outcome: 'rejected', name: (error as Error).name, status: (error as { status?: number }).status ?? null, code: (error as { code?: string }).code ?? null })
} finally {
  clearInterval(keepAlive)
}
