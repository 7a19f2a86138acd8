/**
 * What the demo page does for each kind beyond the generated form: the
 * hand-tuned parts (summarize's fields and result, render's image), and the
 * log lines of the events every kind has.
 */
import type { Client, JobEvent } from '../lib/client/index.ts'
import { clip, el, field, formatBytes } from './dom.ts'
import { FormError } from './kind-form.ts'

export interface KindUi {
  /** The kind's input, read from its hand-written fieldset in index.html; absent: the generated form. */
  input?(fieldset: HTMLFieldSetElement): Record<string, unknown>
  /** A log line for one of the kind's own events, or null to leave it out of the log. */
  describe(event: JobEvent): string | null
  renderResult(result: unknown, into: HTMLElement, context: ResultContext): void
  /** Why a submit joined a running job instead of starting one. */
  joinedBecause: string
}

export interface ResultContext {
  /** The `done` event's data: the result, and the files the job saved. */
  done: DoneData
  client: Client
  /** Aborted once the page shows another job: stop any download for this one. */
  signal: AbortSignal
  /** The page's own ways to show things. */
  page: {
    /** Shows a blob through an object URL the page revokes when it moves on. */
    showBlob(blob: Blob): string
    showError(text: string): void
    describeError(error: unknown): string
  }
}

/** A generated file, as the `done` event and `asset_created` list it. */
export interface JobFile {
  assetId: string
  filename: string
  contentType: string
  bytes: number
  url: string
}

export interface DoneData {
  result: unknown
  assets?: JobFile[]
}

/** What `render` returns (lib/kinds/render.ts). */
interface RenderResult {
  assetId: string
  url: string
  width: number
  height: number
}

export const KINDS: Record<string, KindUi> = {
  summarize: {
    input(fieldset) {
      const text = field<HTMLTextAreaElement>(fieldset, 'text')
      const title = field<HTMLInputElement>(fieldset, 'title')
      const windowChars = field<HTMLInputElement>(fieldset, 'windowChars')
      if (!text.value.trim()) throw new FormError('Paste a text or load the sample first.', text)
      const size = Number(windowChars.value)
      if (!Number.isInteger(size) || size < 500 || size > 100_000) {
        throw new FormError('The window size must be a whole number from 500 to 100000.', windowChars)
      }
      return { text: text.value, windowChars: size, ...(title.value.trim() ? { title: title.value.trim() } : {}) }
    },
    describe(event) {
      if (event.type !== 'window_complete') return null
      const data = event.data as { index: number; total: number; summary: string }
      return `Window ${data.index + 1} of ${data.total} done: ${clip(data.summary, 180)}`
    },
    renderResult(result, into) {
      const { title, summary, keyPoints, windows } = result as { title: string; summary: string; keyPoints: string[]; windows?: unknown[] }
      into.append(
        el('h4', { className: 'result-title' }, title),
        el('p', {}, summary),
        el('h5', {}, 'Key points'),
        el('ul', { className: 'key-points' }, ...keyPoints.map((point) => el('li', {}, point))),
        el('p', { className: 'hint' }, `From ${windows?.length ?? 0} window${windows?.length === 1 ? '' : 's'}.`),
      )
    },
    joinedBecause: 'this text is already being worked on',
  },

  render: {
    describe: () => null, // its progress drives the bar; `asset_created` is logged for every kind
    renderResult(result, into, { done, client, signal, page }) {
      const { assetId, url, width, height } = result as RenderResult
      const file = done.assets?.find((asset) => asset.assetId === assetId)
      const filename = file?.filename ?? `mandelbrot-${width}x${height}.png`
      const size = `${width} × ${height} pixels`
      const alt = `The Mandelbrot set, ${size}: a black heart-shaped body with round bulbs and a thin spike to the left, fringed with colour on an orange background.`
      const show = (src: string, bytes: number) => [
        el('figure', { className: 'rendered' }, el('img', { src, width, height, alt }), el('figcaption', {}, `${filename}, ${size}, ${formatBytes(bytes)}.`)),
        el('p', {}, el('a', { className: 'button', href: src, download: filename }, 'Download PNG')),
      ]
      into.append(el('h4', { className: 'result-title' }, 'Mandelbrot set'))
      // The feed and the stream list the file with a signed, expiring link: <img src> needs no header.
      if (file?.url.includes('sig=')) {
        into.append(...show(file.url, file.bytes))
        return
      }
      const loading = el('p', { className: 'hint' }, 'Downloading the image…')
      into.append(loading)
      client.downloadAsset(url || assetId, { signal }).then(
        (blob) => {
          if (signal.aborted) return // the page moved on to another job meanwhile
          loading.replaceWith(...show(page.showBlob(blob), blob.size))
        },
        (error: unknown) => {
          if (signal.aborted) return
          loading.textContent = 'The image could not be downloaded.'
          page.showError(`Could not download the image: ${page.describeError(error)}`)
        },
      )
    },
    joinedBecause: 'this canvas is already being rendered',
  },
}

export const GENERIC_EVENTS: Record<string, (event: JobEvent) => string | null> = {
  started: (event) => {
    const attempt = (event.data as { attempt?: number } | null)?.attempt ?? 1
    return attempt > 1 ? `Attempt ${attempt} started.` : 'Started: a worker picked the job up.'
  },
  attempt_failed: (event) => {
    const { attempt, error } = event.data as { attempt: number; error?: { message?: string } }
    return `Attempt ${attempt} failed: ${error?.message ?? 'unknown error'}`
  },
  retry_scheduled: (event) => {
    const { attempt, at } = event.data as { attempt: number; at: string }
    return `Attempt ${attempt} at ${new Date(at).toLocaleTimeString()}.`
  },
  progress: () => null, // drives the progress bar instead
  cancel_requested: () => 'Cancel requested: waiting for the worker to stop.',
  done: () => 'Done.',
  error: (event) => `Failed: ${(event.data as { error?: { message?: string } })?.error?.message ?? 'unknown error'}`,
  asset_created: (event) => {
    const file = (event.data as { asset?: JobFile }).asset
    return file ? `Saved ${file.filename} (${formatBytes(file.bytes)}).` : 'Saved a file.'
  },
  canceled: () => 'Canceled.',
}

export const TERMINAL = new Set(['done', 'error', 'canceled'])
