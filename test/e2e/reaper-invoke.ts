/**
 * The scheduled reaper run through `netlify functions:invoke`, as an operator
 * would run it against a `netlify dev`: netlify dev runs a scheduled function
 * with the clockwork user agent and, for v2 functions, discards its response
 * body, so the CLI prints an empty line. The report is read from the line the
 * function logs (`reaper run`), which netlify dev prints on its stdout.
 */
import { expect } from 'vitest'
import { runNetlify } from './support.ts'

const REAPER_LINE = /^\{"level":"info","message":"reaper run".*\}$/gm

/** `output()` is everything the server printed so far; the report is the first `reaper run` line after the call. */
export async function invokeReaper(root: string, port: number, output: () => string | Promise<string>) {
  const before = (await output()).length
  const cli = await runNetlify(root, ['functions:invoke', 'reaper', '--port', String(port), '--offline'], {})
  expect(cli.code, `${cli.stdout}\n${cli.stderr}`).toBe(0)
  let line: string | undefined
  for (let i = 0; i < 50 && !line; i++) {
    line = (await output()).slice(before).match(REAPER_LINE)?.[0]
    if (!line) await new Promise((done) => setTimeout(done, 100))
  }
  expect(line, `no "reaper run" line in netlify dev's output:\n${(await output()).slice(before)}`).toBeDefined()
  const { level: _level, message: _message, ...report } = JSON.parse(line!)
  return { cli, report }
}

export function expectReportShape(report: Record<string, unknown>) {
  for (const field of ['liveChecked', 'failed', 'settled', 'expiredDeleted', 'locksRemoved']) {
    expect(Number.isInteger(report[field]) && (report[field] as number) >= 0, `${field}: ${report[field]}`).toBe(true)
  }
  expect(typeof report.unfinished).toBe('boolean')
  for (const [field, value] of Object.entries(report)) {
    if (field !== 'unfinished') expect(Number.isInteger(value) && (value as number) >= 0, `${field}: ${value}`).toBe(true)
  }
}
