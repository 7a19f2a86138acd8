/**
 * The demo page at `/`: submit a job and watch it with the client
 * (`lib/client`). Built into `public/app.js` by `scripts/build-client.ts`.
 *
 * The kind menu and the forms come from `GET /api/kinds` (kind-form.ts): a
 * kind added on the server appears with a form generated from its input
 * schema. `KINDS` keeps what is tuned by hand where it helps: summarize's
 * form in index.html (sample text, counter) and render's image preview.
 */
import { ApiError, type Client, type WatchItem } from '../lib/client/index.ts'
import { FormError, type KindInfo, kindFieldset, loadKinds, readKindFieldset } from './kind-form.ts'
import { sampleText } from './sample-text.ts'
import { createAccess } from './access.ts'
import { connectionView } from './stream.ts'
import { clip, el } from './dom.ts'
import { GENERIC_EVENTS, KINDS, type KindUi, type DoneData, TERMINAL } from './kind-ui.ts'


// ---- elements ---------------------------------------------------------------

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const form = $<HTMLFormElement>('submit-form')
const keyInput = $<HTMLInputElement>('api-key')
const kindSelect = $<HTMLSelectElement>('kind')
const textArea = $<HTMLTextAreaElement>('text')
const textCount = $('text-count')
const errorBox = $('error')
const jobSection = $('job')
const notice = $('notice')
const jobIdEl = $('job-id')
const statusEl = $('job-status')
const connection = connectionView($('job-connection'))
const progressEl = $<HTMLProgressElement>('progress')
const progressText = $('progress-text')
const cancelButton = $<HTMLButtonElement>('cancel')
const resultSection = $('result')
const resultBody = $('result-body')
const eventsList = $('events')

// ---- state -------------------------------------------------------------------

let current: { jobId: string; kind: string; watch: AbortController; finished: boolean; client?: Client; maxAttempts: number } | null = null
/** The object URL of the image on show (a rendered PNG), revoked when it is replaced. */
let blobUrl: string | null = null
const access = createAccess(keyInput, $('key-hint'))

// ---- setup -------------------------------------------------------------------

/** The kinds this deploy runs, from `GET /api/kinds`. */
let catalog = new Map<string, KindInfo>()
const kindsReady = setUpKinds()
kindSelect.addEventListener('change', showKindFieldset)

textArea.addEventListener('input', countText)
$('load-sample').addEventListener('click', () => {
  const size = $<HTMLSelectElement>('sample-size').value
  textArea.value = sampleText(size === 'long' ? 60_000 : 3_000)
  countText()
  textArea.focus()
})

form.addEventListener('submit', (event) => {
  event.preventDefault()
  void submit()
})
cancelButton.addEventListener('click', () => void cancel())
keyInput.addEventListener('change', resumeFromUrl)

void Promise.all([access.detectLocal(), kindsReady]).then(resumeFromUrl)

// ---- kinds -------------------------------------------------------------------

/** Fills the kind menu, and generates a form for each kind without one in index.html. */
async function setUpKinds() {
  try {
    const kinds = await loadKinds()
    catalog = new Map(kinds.map((kind) => [kind.kind, kind]))
    for (const kind of kinds) {
      kindSelect.append(new Option(kind.title, kind.kind))
      if (!form.querySelector(`fieldset[data-kind="${kind.kind}"]`)) $('kind-forms').append(kindFieldset(kind))
    }
  } catch (error) {
    showError(describeError(error))
  }
  showKindFieldset()
}

/** What the page does for a kind: its hand-tuned parts, else the generic ones. */
function uiFor(kind: string): KindUi {
  const lock = catalog.get(kind)?.lock?.by ?? []
  return {
    describe: (event) => `${event.type}: ${clip(JSON.stringify(event.data) ?? 'null', 180)}`,
    renderResult: (result, into) => into.append(el('pre', { className: 'result-json' }, JSON.stringify(result, null, 2))),
    joinedBecause: `another job is already working on the same ${lock.length ? lock.join(' or ') : 'resource'}`,
    ...KINDS[kind],
  }
}

// ---- actions -----------------------------------------------------------------

async function submit() {
  clearError()
  await kindsReady // a submit right after the page opened waits for the kind list
  const kindName = kindSelect.value
  const info = catalog.get(kindName)
  if (!info) return showError('The list of job kinds has not loaded: reload the page.')
  const kind = uiFor(kindName)
  let input: Record<string, unknown>
  try {
    if (!access.ready()) throw new FormError('Enter a token or API key first.', keyInput)
    const fieldset = form.querySelector<HTMLFieldSetElement>(`fieldset[data-kind="${kindName}"]`)!
    input = kind.input ? kind.input(fieldset) : readKindFieldset(fieldset, info.input)
  } catch (error) {
    if (error instanceof FormError) {
      showError(error.message)
      error.field.focus()
      return
    }
    throw error
  }
  const submitStatus = $('submit-status')
  submitStatus.textContent = 'Submitting…'
  try {
    const onBusy = ($('wait-if-busy') as HTMLInputElement).checked ? ('queue' as const) : undefined
    const { joined, job } = await (await access.submitter()).submitJob(kindName, input, { onBusy }).finally(() => (submitStatus.textContent = ''))
    if (!joined) access.remember(job.jobId, job.watchToken)
    if (current?.jobId === job.jobId && !current.finished) {
      // The other click of a double click: it is the job we already watch.
      if (joined) say(`Joined the running job ${job.jobId}: ${kind.joinedBecause}.`)
      return
    }
    watch(job.jobId, kindName)
    jobSection.scrollIntoView({ block: 'start', behavior: matchMedia('(prefers-reduced-motion: reduce)').matches ? 'auto' : 'smooth' })
    say(joined ? `Joined the running job ${job.jobId}: ${kind.joinedBecause}.` : `Submitted job ${job.jobId}.`)
    // Waiting behind a busy resource, or for one of the account's running jobs to end: where it stands.
    if (!joined && job.queue) progressText.textContent = queueText(job.queue)
  } catch (error) {
    showError(describeError(error))
  }
}

function queueText(queue: { position: number; ahead: string | null; waitingFor: 'resource' | 'account' }) {
  if (queue.waitingFor === 'account') return `Queued: your account runs as many jobs as it may; position ${queue.position} for the next free slot`
  return `Queued: position ${queue.position}${queue.ahead ? `, behind ${queue.ahead}` : ''}`
}

async function cancel() {
  const job = current
  if (!job || job.finished) return
  clearError()
  cancelButton.disabled = true
  say('Asking the worker to stop…')
  // 409 job_busy means a busy worker kept winning the write; the client already asked again
  // a few times. Keep asking while the job runs (for up to two minutes).
  const giveUpAt = Date.now() + 120_000
  for (;;) {
    try {
      const answer = await (await access.canceller(job.jobId)).cancelJob(job.jobId, { signal: job.watch.signal })
      if (current === job && !job.finished) {
        say(answer.status === 'canceled' ? 'Canceled.' : 'Cancel requested: the worker stops at its next step.')
      }
      return
    } catch (error) {
      if (job.finished || job.watch.signal.aborted) return
      if (error instanceof ApiError && error.code === 'job_finished') return say('The job had already finished.')
      if (error instanceof ApiError && error.code === 'job_busy' && Date.now() < giveUpAt) {
        say('The worker is busy; still asking it to stop…')
        continue
      }
      showError(describeError(error))
      cancelButton.disabled = false
      return
    }
  }
}

/** Shows a job and follows its feed from the start until its terminal event. */
function watch(jobId: string, kindName: string) {
  current?.watch.abort()
  const me: NonNullable<typeof current> = { jobId, kind: kindName, watch: new AbortController(), finished: false, maxAttempts: 1 }
  current = me
  history.replaceState(null, '', `#job=${encodeURIComponent(jobId)}&kind=${encodeURIComponent(kindName)}`)
  resetJobView(jobId)
  void (async () => {
    try {
      me.client = await access.watcher(jobId)
      // How many attempts its kind allows: shown as "attempt x of y" once a retry happens.
      // A failed read only loses the "of y": the watch goes on.
      const status = await me.client.getJob(jobId, { signal: me.watch.signal }).catch(() => null)
      if (status) me.maxAttempts = status.maxAttempts
      // SSE where the browser has EventSource (the client's default), the long-poll otherwise.
      const onConnection = (state: Parameters<typeof connection.show>[0]) => current === me && connection.show(state)
      onConnection('connecting')
      for await (const item of me.client.watchJob(jobId, { signal: me.watch.signal, onConnection })) render(me, item)
    } catch (error) {
      if (me.watch.signal.aborted) return
      showError(describeError(error))
      setStatus('unknown')
    } finally {
      if (current === me) cancelButton.disabled = true
      if (current === me) connection.show('closed')
    }
  })()
}

function render(job: NonNullable<typeof current>, item: WatchItem) {
  if (item.truncated) {
    log(`Events before #${item.truncated.droppedBefore} were dropped by the log cap; continuing from #${item.truncated.firstSeq}.`, 'truncated')
    return
  }
  const event = item
  if (event.type === 'started') {
    const attempt = (event.data as { attempt?: number } | null)?.attempt ?? 1
    setStatus('running', attempt > 1 ? `running (attempt ${attempt} of ${job.maxAttempts})` : 'running')
  }
  if (event.type === 'retry_scheduled') {
    const { attempt, at } = event.data as { attempt: number; at: string }
    setStatus('retrying', `retrying: attempt ${attempt} of ${job.maxAttempts} at ${new Date(at).toLocaleTimeString()}`)
    progressText.textContent = `Attempt ${attempt - 1} failed; the next one starts at ${new Date(at).toLocaleTimeString()}.`
  }
  if (event.type === 'progress') {
    const { message, percent } = event.data as { message: string; percent: number | null }
    if (percent !== null) {
      progressEl.value = percent
      progressEl.textContent = `${Math.round(percent)}%`
    }
    progressText.textContent = percent === null ? message : `${Math.round(percent)}% — ${message}`
  }
  const describe = GENERIC_EVENTS[event.type] ?? uiFor(job.kind).describe
  const line = describe ? describe(event) : null
  if (line) log(`#${event.seq} ${line}`, event.type)

  if (!TERMINAL.has(event.type)) return
  job.finished = true
  cancelButton.disabled = true
  if (event.type === 'done') {
    setStatus('complete')
    progressEl.value = 100
    progressEl.textContent = '100%'
    progressText.textContent = '100% — Complete'
    resultBody.replaceChildren()
    const done = event.data as DoneData
    uiFor(job.kind).renderResult(done.result, resultBody, { done, client: job.client!, signal: job.watch.signal, page: { showBlob, showError, describeError } })
    resultSection.hidden = false
    say('The job is complete.')
  } else if (event.type === 'error') {
    setStatus('failed')
    const error = (event.data as { error?: { code: string; message: string } }).error
    showError(`The job failed: ${error?.message ?? 'unknown error'}${error?.code ? ` (${error.code})` : ''}`)
    say('The job failed.')
  } else {
    setStatus('canceled')
    progressText.textContent = `${progressText.textContent?.replace(/ \(canceled\)$/, '') ?? ''} (canceled)`
    say('The job was canceled.')
  }
}

// ---- view helpers ------------------------------------------------------------

function resetJobView(jobId: string) {
  jobSection.hidden = false
  jobIdEl.textContent = jobId
  setStatus('queued')
  progressEl.value = 0
  progressEl.textContent = '0%'
  progressText.textContent = 'Waiting for a worker…'
  cancelButton.disabled = false
  resultSection.hidden = true
  resultBody.replaceChildren()
  showBlob(null)
  eventsList.replaceChildren()
  notice.textContent = ''
}

function setStatus(status: string, label = status) {
  statusEl.textContent = label
  statusEl.dataset.status = status
}

function log(text: string, type: string) {
  // Follow the newest event unless the reader scrolled up to read older ones.
  const atBottom = eventsList.scrollHeight - eventsList.scrollTop - eventsList.clientHeight < 24
  eventsList.append(el('li', { className: `event event-${type}` }, text))
  if (atBottom) eventsList.scrollTop = eventsList.scrollHeight
}

function say(text: string) {
  notice.textContent = text
}

function showError(text: string) {
  errorBox.textContent = text
  errorBox.hidden = false
}

function clearError() {
  errorBox.textContent = ''
  errorBox.hidden = true
}

function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 401) return `${error.message} Check the API key.`
    return error.message
  }
  if (error instanceof TypeError) return 'Could not reach the API. Check your connection and try again.'
  return error instanceof Error ? error.message : String(error)
}

function showKindFieldset() {
  for (const fieldset of form.querySelectorAll<HTMLFieldSetElement>('fieldset[data-kind]')) {
    const active = fieldset.dataset.kind === kindSelect.value
    fieldset.hidden = !active
    fieldset.disabled = !active
  }
}

function countText() {
  const chars = textArea.value.length
  const words = textArea.value.trim() ? textArea.value.trim().split(/\s+/).length : 0
  textCount.textContent = `${chars.toLocaleString('en')} characters, ${words.toLocaleString('en')} words`
}

/** Shows a blob through a fresh object URL, revoking the previous one; `null` only revokes. */
function showBlob(blob: Blob): string
function showBlob(blob: null): null
function showBlob(blob: Blob | null): string | null {
  if (blobUrl) URL.revokeObjectURL(blobUrl)
  blobUrl = blob ? URL.createObjectURL(blob) : null
  return blobUrl
}

// ---- resuming ----------------------------------------------------------------------

/** A reload keeps watching the job named in the URL (`#job=…&kind=…`). */
function resumeFromUrl() {
  const params = new URLSearchParams(location.hash.slice(1))
  const jobId = params.get('job')
  const kind = params.get('kind') ?? 'summarize'
  if (!jobId || current || !access.ready() || !catalog.has(kind)) return
  kindSelect.value = kind // the form shows the resumed job's kind
  showKindFieldset()
  watch(jobId, kind)
  say(`Resumed job ${jobId}.`)
}
