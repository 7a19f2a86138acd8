/**
 * `summarize`: extractive summary of a long text, window by window. Each
 * window's summary is emitted as `window_complete` as soon as it is ready.
 * Its lock is the account plus a hash of the text, so a double click on the
 * same document joins the running job instead of starting another.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { defineJob } from './define.ts'
import { deriveTitle, extractKeyPoints, splitWindows, summarizeWindow } from './summarize-text.ts'

export const MAX_TEXT_CHARS = 2_000_000

export const summarizeInput = z.strictObject({
  text: z
    .string()
    .max(MAX_TEXT_CHARS, `text can be at most ${MAX_TEXT_CHARS} characters`)
    .refine((text) => text.trim().length > 0, 'text must not be empty'),
  title: z.string().trim().min(1).max(200).optional(),
  /** Characters per window; smaller windows mean more, finer progress. */
  windowChars: z.number().int().min(500).max(100_000).optional().describe('Characters per window: smaller windows mean more, finer progress.'),
})

export interface SummarizeResult {
  title: string
  summary: string
  keyPoints: string[]
  windows: { index: number; chars: number; summary: string }[]
}

export const summarize = defineJob({
  kind: 'summarize',
  title: 'Summarize a text',
  description: 'An extractive summary of a long text, window by window, with key points; each window is reported as it is done.',
  input: summarizeInput,
  example: { text: 'Durable jobs survive restarts. Locks stop double work.', windowChars: 2000 },
  cost: 1,
  lockedBy: ['input.text'],
  lockKey: (input, account) => [account, 'summarize', createHash('sha256').update(input.text).digest('hex').slice(0, 32)],
  // Every step is linear in the text; between steps the handler yields so the
  // heartbeat keeps the job alive while a 2 MB text is worked through.
  async run({ input, progress, emit, signal, yield: yieldToTimers }): Promise<SummarizeResult> {
    const windows = splitWindows(input.text, input.windowChars)
    await progress(`Split into ${windows.length} window${windows.length === 1 ? '' : 's'}`, 0)
    const summaries: SummarizeResult['windows'] = []
    for (const [index, window] of windows.entries()) {
      await yieldToTimers()
      signal.throwIfAborted()
      const { summary } = summarizeWindow(window)
      summaries.push({ index, chars: window.length, summary })
      await emit('window_complete', { index, total: windows.length, summary })
      await progress(`Summarized window ${index + 1} of ${windows.length}`, Math.round(((index + 1) / windows.length) * 950) / 10)
    }
    signal.throwIfAborted()
    await progress('Picking key points', 97)
    const overall = summarizeWindow(summaries.map((w) => w.summary).join('\n\n'), 5)
    await yieldToTimers()
    const keyPoints = extractKeyPoints(input.text)
    await yieldToTimers()
    signal.throwIfAborted()
    return { title: input.title ?? deriveTitle(input.text), summary: overall.summary, keyPoints, windows: summaries }
  },
})
