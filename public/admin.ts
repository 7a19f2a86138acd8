/**
 * The operator view at `/admin`: the last 24 hours, jobs filtered by status,
 * kind and account a page at a time, a job's detail with its timeline,
 * cancel, held locks, accounts and granting credits. Talks to the admin
 * routes with the admin token, which the operator types and which is kept in
 * sessionStorage (this tab only). Everything is inserted as text, never as HTML.
 * Built into `public/admin.js` by `scripts/build-client.ts`.
 */
import { ApiError, type Client, createClient } from '../lib/client/index.ts'
import { type Detail, appendEvents, renderDetail, timelineNote } from './admin-detail.ts'
import { type Row, duration, el, empty, facts, humanize, newGrantId, section, table, text, time } from './admin-dom.ts'

const TOKEN_KEY = 'durable-jobs.adminToken'

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const form = $<HTMLFormElement>('admin-form')
const tokenInput = $<HTMLInputElement>('admin-token')
const statusFilter = $<HTMLSelectElement>('status-filter')
const kindFilter = $<HTMLInputElement>('kind-filter')
const accountFilter = $<HTMLInputElement>('account-filter')
const limitInput = $<HTMLInputElement>('limit')
const errorBox = $('error')
const meta = $('meta')
const summaryBox = $('summary')
const detailBox = $('job-detail')
const out = $('snapshot')

interface SearchPage {
  jobs: Row[]
  next: string | null
  examined: number
  skipped: number
}

// Made with the token on each load; every request comes after one.
let api!: Client
let jobsBody: HTMLElement | null = null
let shown = 0
let examined = 0

tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? ''
form.addEventListener('submit', (event) => {
  event.preventDefault()
  void load()
})
$('forget').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY)
  tokenInput.value = ''
  for (const box of [out, summaryBox, detailBox]) box.replaceChildren()
  detailBox.hidden = true
  meta.textContent = 'Token forgotten.'
  tokenInput.focus()
})
if (tokenInput.value) void load()

function filters(cursor?: string) {
  const params = new URLSearchParams({ limit: limitInput.value || '50' })
  if (statusFilter.value) params.set('status', statusFilter.value)
  if (kindFilter.value.trim()) params.set('kind', kindFilter.value.trim())
  if (accountFilter.value.trim()) params.set('account', accountFilter.value.trim())
  if (cursor) params.set('cursor', cursor)
  return params
}

async function load() {
  errorBox.hidden = true
  const token = tokenInput.value.trim()
  if (!token) return showError('Enter the admin token.', tokenInput)
  api = createClient({ apiKey: token })
  meta.textContent = 'Loading…'
  try {
    const [page, sum, snapshot] = await Promise.all([
      api.request<SearchPage>('GET', `/api/admin/search?${filters()}`),
      api.request<Row>('GET', '/api/admin/summary'),
      api.request<Row>('GET', '/api/admin/overview'),
    ])
    sessionStorage.setItem(TOKEN_KEY, token)
    renderSummary(sum)
    render(page, snapshot)
  } catch (error) {
    meta.textContent = ''
    if (error instanceof ApiError && error.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY)
      showError(`The admin token was not accepted. ${error.message}`, tokenInput)
    } else failed(error)
  }
}

function render(page: SearchPage, snapshot: Row) {
  // `snapshot`: held locks and accounts (GET /api/admin/overview).
  const locks = Array.isArray(snapshot.locks) ? (snapshot.locks as Row[]) : []
  const accounts = Array.isArray(snapshot.accounts) ? (snapshot.accounts as Row[]) : []
  shown = 0
  examined = 0
  const jobsTable = table(['Job', 'Status', 'Kind', 'Account', 'Created', 'Finished', 'Error'], [], 'jobs')
  jobsBody = jobsTable.querySelector('tbody')
  const older = el('button', { type: 'button', id: 'older', hidden: true }, 'Older jobs')
  const note = el('p', { className: 'hint', id: 'jobs-note', role: 'status' })
  out.replaceChildren(
    section('Jobs', jobsTable, note, older),
    section('Held locks', locks.length ? table(['Resource', 'Job', 'Acquired', 'Expires', 'Expired'], locks.map((l) => [el('code', {}, text(l.resource)), el('code', { className: 'job-id' }, text(l.jobId)), time(l.acquiredAt), time(l.expiresAt), text(l.expired)])) : empty('No held locks.')),
    section('Accounts', accounts.length ? table(['Account', 'Balance', 'Ledger entries', ''], accounts.map(accountRow)) : empty('No accounts.'), grantForm()),
  )
  addJobs(page, older, note)
  meta.textContent = `Snapshot of ${new Date().toLocaleString()}: ${page.jobs.length} job${page.jobs.length === 1 ? '' : 's'}, ${locks.length} held lock${locks.length === 1 ? '' : 's'}.`
}

function addJobs(page: SearchPage, older: HTMLButtonElement, note: HTMLElement) {
  for (const job of page.jobs) jobsBody?.append(jobRow(job))
  shown += page.jobs.length
  examined += page.examined
  const filtered = statusFilter.value || kindFilter.value.trim() || accountFilter.value.trim()
  note.textContent = filtered ? `${shown} matching of the last ${examined} jobs looked at${page.next ? '; older ones not looked at yet' : ''}.` : `${shown} jobs${page.next ? '; older ones on the next page' : ''}.`
  if (shown === 0 && !page.next) note.textContent = filtered ? `No job matches (${examined} looked at).` : 'No jobs.'
  older.hidden = !page.next
  older.onclick = async () => {
    older.disabled = true
    try {
      addJobs(await api.request<SearchPage>('GET', `/api/admin/search?${filters(page.next!)}`), older, note)
    } catch (error) {
      failed(error)
    } finally {
      older.disabled = false
    }
  }
}

function jobRow(job: Row) {
  const error = job.error as { code?: string; message?: string } | null
  const link = el('button', { type: 'button', className: 'link job-link', onclick: () => void openJob(String(job.jobId)) }, el('code', { className: 'job-id' }, text(job.jobId)))
  const cells: (string | Node)[] = [link, el('span', { className: 'status', dataset: { status: text(job.status) } }, text(job.status)), text(job.kind), text(job.account), time(job.createdAt), time(job.finishedAt), error ? `${error.code}: ${error.message}` : '—']
  const headers = ['Job', 'Status', 'Kind', 'Account', 'Created', 'Finished', 'Error']
  return el('tr', {}, ...cells.map((content, i) => el('td', { dataset: { label: headers[i]! } }, content)))
}

async function openJob(jobId: string, note?: string) {
  try {
    const detail = await api.request<Detail>('GET', `/api/admin/jobs/${jobId}`)
    detailBox.hidden = false
    renderDetail(detailBox, detail, { cancel: (id) => void cancel(id), retry: (id) => void retry(id), moreEvents: (id, after) => void moreEvents(id, after) })
    if (note) detailBox.insertBefore(el('p', { className: 'notice', id: 'detail-note', role: 'status' }, note), detailBox.children[1] ?? null)
    detailBox.scrollIntoView({ block: 'start' })
  } catch (error) {
    failed(error)
  }
}

async function cancel(jobId: string) {
  try {
    const job = await api.request<Row>('POST', `/api/admin/jobs/${jobId}/cancel`)
    await openJob(jobId, job.status === 'canceled' ? 'Canceled.' : 'Cancel requested: the worker stops at its next check.')
  } catch (error) {
    failed(error)
  }
}

/** Runs a failed job again as a new job, and opens that one (a second click answers with the same job). */
async function retry(jobId: string) {
  try {
    const job = await api.request<Row & { jobId: string }>('POST', `/api/admin/jobs/${jobId}/retry`)
    await openJob(job.jobId, `Retry of ${jobId}: a new job.`)
  } catch (error) {
    failed(error)
  }
}

async function moreEvents(jobId: string, after: number) {
  try {
    const detail = await api.request<Detail>('GET', `/api/admin/jobs/${jobId}?after=${after}`)
    appendEvents($('timeline'), detail.timeline.events)
    $('timeline-note').textContent = timelineNote(detail.timeline)
    const more = $<HTMLButtonElement>('more-events')
    more.hidden = detail.timeline.next >= detail.timeline.lastSeq
    more.onclick = () => void moreEvents(jobId, detail.timeline.next)
  } catch (error) {
    failed(error)
  }
}

function accountRow(account: Row) {
  const pick = el('button', { type: 'button', className: 'link', onclick: () => {
    $<HTMLInputElement>('grant-account').value = text(account.account)
    $<HTMLInputElement>('grant-amount').focus()
  } }, 'Grant…')
  return [el('span', { className: 'account' }, text(account.account)), text(account.balance), text(account.ledgerEntries), pick]
}

/** One grant id per intended grant: a double click or a retry sends the same one, so it is granted once. */
function grantForm() {
  const grant = el('form', { id: 'grant-form', className: 'grant', noValidate: true })
  grant.dataset.grantId = newGrantId()
  const result = el('p', { id: 'grant-result', role: 'status', className: 'hint' })
  const field = (id: string, label: string, attributes: Record<string, string>) => {
    const input = document.createElement('input')
    input.id = id
    for (const [name, value] of Object.entries(attributes)) input.setAttribute(name, value)
    return el('div', { className: 'field' }, el('label', { htmlFor: id }, label), input)
  }
  grant.append(
    el('h3', {}, 'Grant credits'),
    el(
      'div',
      { className: 'row' },
      field('grant-account', 'Account', { type: 'text', required: '', autocomplete: 'off', spellcheck: 'false' }),
      field('grant-amount', 'Credits', { type: 'number', min: '1', max: '1000000', required: '', inputmode: 'numeric' }),
      field('grant-reason', 'Reason', { type: 'text', maxlength: '200', placeholder: 'granted by operator' }),
    ),
    el('button', { type: 'submit', id: 'grant', className: 'primary' }, 'Grant'),
    result,
  )
  // A changed grant is another grant.
  grant.addEventListener('input', () => (grant.dataset.grantId = newGrantId()))
  grant.addEventListener('submit', async (event) => {
    event.preventDefault()
    const account = $<HTMLInputElement>('grant-account').value.trim()
    const amount = Number($<HTMLInputElement>('grant-amount').value)
    const reason = $<HTMLInputElement>('grant-reason').value.trim()
    try {
      const answer = await api.request<{ balance: number; replayed: boolean }>('POST', `/api/admin/accounts/${encodeURIComponent(account)}/grants`, {
        body: { grantId: grant.dataset.grantId, amount, ...(reason ? { reason } : {}) },
      })
      result.textContent = answer.replayed ? `Already granted (same grant): ${account} has ${answer.balance} credits.` : `Granted ${amount} to ${account}: balance ${answer.balance}.`
      grant.dataset.grantId = newGrantId()
    } catch (error) {
      result.textContent = error instanceof Error ? error.message : String(error)
    }
  })
  return grant
}

function renderSummary(sum: Row) {
  const counts = (sum.counts ?? {}) as Record<string, number>
  const durations = (sum.durations ?? []) as { kind: string; count: number; p50Ms: number | null; p95Ms: number | null }[]
  const failures = (sum.failures ?? []) as { code: string; count: number }[]
  summaryBox.replaceChildren(
    el('h2', { id: 'summary-title' }, 'Last 24 hours'),
    facts([
      ...['complete', 'failed', 'canceled'].map((status) => [humanize(status), counts[status] ?? 0] as [string, unknown]),
      ['Live now', sum.live],
    ]),
    durations.length ? table(['Kind', 'Jobs run', 'p50', 'p95'], durations.map((d) => [d.kind, String(d.count), duration(d.p50Ms), duration(d.p95Ms)]), 'durations') : empty('No job ran to an end in this window.'),
    failures.length ? table(['Failure code', 'Jobs'], failures.map((f) => [el('code', {}, f.code), String(f.count)]), 'failures') : empty('No failures.'),
    el('p', { className: 'hint' }, `From ${text(sum.reads)} hourly rollup reads, since ${new Date(String(sum.from)).toLocaleString()}. Run times are histogram buckets ("≤").`),
  )
}

function failed(error: unknown) {
  showError(error instanceof Error ? error.message : String(error))
}

function showError(message: string, focus?: HTMLElement) {
  errorBox.textContent = message
  errorBox.hidden = false
  focus?.focus()
}
