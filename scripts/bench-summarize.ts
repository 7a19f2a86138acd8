/**
 * For `npm run bench`: the `summarize` handler on 2 MB texts, normal and
 * hostile (shapes that made the old sentence splitter quadratic). What matters
 * besides the total is the longest stretch the handler runs without yielding:
 * while it runs, no timer fires, so the worker's heartbeat stops.
 */
import { performance } from 'node:perf_hooks'
import type { JobContext } from '../lib/kinds/define.ts'
import { MAX_TEXT_CHARS, type SummarizeResult, summarize } from '../lib/kinds/summarize.ts'

export interface SummarizerRun {
  ms: number
  /** Longest synchronous stretch between two awaits of the handler. */
  longestBlockMs: number
  windows: number
}

/** Runs the real handler with a context that only records when it gave the event loop back. */
export async function runSummarizer(text: string): Promise<SummarizerRun> {
  let last = performance.now()
  let longest = 0
  const mark = async () => {
    longest = Math.max(longest, performance.now() - last)
    await new Promise<void>((resolve) => setImmediate(resolve))
    last = performance.now()
  }
  const ctx: JobContext<{ text: string }> = {
    jobId: 'job_bench',
    account: 'bench',
    input: summarize.input.parse({ text }),
    attempt: 1,
    signal: new AbortController().signal,
    progress: mark,
    step: async (_name, fn) => fn(),
    emit: mark,
    saveAsset: () => Promise.reject(new Error('summarize saves no files')),
    yield: mark,
  }
  const t0 = performance.now()
  last = t0
  const result: SummarizeResult = await summarize.run(ctx)
  await mark()
  return { ms: performance.now() - t0, longestBlockMs: longest, windows: result.windows.length }
}

const fill = (unit: string) => unit.repeat(Math.floor(MAX_TEXT_CHARS / unit.length))

/** 2 MB shapes that cost the old splitter minutes to hours. */
export const HOSTILE_TEXTS: Record<string, () => string> = {
  '`....x` repeated': () => fill('....x'),
  'one run of dots, then a letter': () => `${'.'.repeat(MAX_TEXT_CHARS - 1)}x`,
  'hard-wrapped lines ending in a comma': () => fill('Word,\n'),
  // Not quadratic before either, but the most sentences per byte: the largest per-sentence cost.
  'half a million one-word sentences': () => fill('Mr.\n'),
}
