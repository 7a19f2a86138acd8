/**
 * The operator view at `/admin`: `GET /api/admin/jobs` with the admin token.
 * The token is typed by the operator and kept in sessionStorage (this tab
 * only). Jobs and locks get tables; any other section of the snapshot (for
 * example credits or balances, once the API reports them) is rendered
 * generically. Everything is inserted as text, never as HTML.
 * Built into `public/admin.js` by `scripts/build-client.ts`.
 */
import { ApiError, createClient } from '../lib/client/index.ts'

const TOKEN_KEY = 'durable-jobs.adminToken'

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const form = $<HTMLFormElement>('admin-form')
const tokenInput = $<HTMLInputElement>('admin-token')
const statusFilter = $<HTMLSelectElement>('status-filter')
const limitInput = $<HTMLInputElement>('limit')
const errorBox = $('error')
const meta = $('meta')
const out = $('snapshot')

type Row = Record<string, unknown>

tokenInput.value = sessionStorage.getItem(TOKEN_KEY) ?? ''
form.addEventListener('submit', (event) => {
  event.preventDefault()
  void load()
})
$('forget').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY)
  tokenInput.value = ''
  out.replaceChildren()
  meta.textContent = 'Token forgotten.'
  tokenInput.focus()
})
if (tokenInput.value) void load()

async function load() {
  errorBox.hidden = true
  const token = tokenInput.value.trim()
  if (!token) {
    showError('Enter the admin token.')
    tokenInput.focus()
    return
  }
  const params = new URLSearchParams({ limit: limitInput.value || '50' })
  if (statusFilter.value) params.set('status', statusFilter.value)
  meta.textContent = 'Loading…'
  try {
    const snapshot = await createClient({ apiKey: token }).request<Row>('GET', `/api/admin/jobs?${params}`)
    sessionStorage.setItem(TOKEN_KEY, token)
    render(snapshot)
  } catch (error) {
    meta.textContent = ''
    if (error instanceof ApiError && error.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY)
      showError(`${error.message} The admin token was not accepted.`)
    } else {
      showError(error instanceof Error ? error.message : String(error))
    }
  }
}

function render(snapshot: Row) {
  const { generatedAt, jobs, locks, ...extra } = snapshot
  const jobRows = Array.isArray(jobs) ? (jobs as Row[]) : []
  const lockRows = Array.isArray(locks) ? (locks as Row[]) : []
  meta.textContent = `Snapshot of ${typeof generatedAt === 'string' ? new Date(generatedAt).toLocaleString() : 'now'}: ${jobRows.length} job${jobRows.length === 1 ? '' : 's'}, ${lockRows.length} held lock${lockRows.length === 1 ? '' : 's'}.`
  out.replaceChildren(
    section('Jobs', jobRows.length ? jobsTable(jobRows) : empty('No jobs.')),
    section('Held locks', lockRows.length ? genericTable(lockRows) : empty('No held locks.')),
    ...Object.entries(extra).map(([name, value]) => section(humanize(name), generic(value))),
  )
}

const JOB_COLUMNS = ['jobId', 'status', 'kind', 'account', 'createdAt', 'finishedAt', 'progress', 'error', 'error_internal'] as const

function jobsTable(rows: Row[]) {
  const headers = ['Job', 'Status', 'Kind', 'Account', 'Created', 'Finished', 'Progress', 'Error', 'Internal error', 'More']
  return table(
    headers,
    rows.map((row) => {
      const rest = Object.fromEntries(Object.entries(row).filter(([key]) => !(JOB_COLUMNS as readonly string[]).includes(key)))
      const progress = row.progress as { message?: string; percent?: number | null } | null | undefined
      const error = row.error as { code?: string; message?: string } | null | undefined
      return [
        el('code', {}, String(row.jobId ?? '')),
        el('span', { className: 'nowrap', dataset: { status: String(row.status ?? '') } } as Partial<HTMLSpanElement>, String(row.status ?? '—')),
        el('span', { className: 'nowrap' }, text(row.kind)),
        text(row.account),
        time(row.createdAt),
        time(row.finishedAt),
        progress ? `${progress.percent == null ? '' : `${Math.round(progress.percent)}% `}${progress.message ?? ''}` : '—',
        error ? `${error.code}: ${error.message}` : '—',
        typeof row.error_internal === 'string' && row.error_internal
          ? el('details', {}, el('summary', {}, firstLine(row.error_internal)), el('pre', {}, row.error_internal))
          : '—',
        Object.keys(rest).length ? el('details', {}, el('summary', {}, 'details'), el('pre', {}, JSON.stringify(rest, null, 2))) : '—',
      ]
    }),
  )
}

/** Arrays of objects become tables, objects definition lists, anything else text. */
function generic(value: unknown): Node {
  if (Array.isArray(value)) {
    if (value.length === 0) return empty('None.')
    if (value.every((item) => item && typeof item === 'object' && !Array.isArray(item))) return genericTable(value as Row[])
    return el('ul', {}, ...value.map((item) => el('li', {}, cell(item))))
  }
  if (value && typeof value === 'object') {
    const dl = el('dl', { className: 'facts' })
    for (const [key, item] of Object.entries(value)) dl.append(el('dt', {}, humanize(key)), el('dd', {}, item && typeof item === 'object' ? generic(item) : cell(item)))
    return dl
  }
  return el('p', {}, cell(value))
}

function genericTable(rows: Row[]) {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))]
  return table(columns.map(humanize), rows.map((row) => columns.map((column) => cell(row[column]))))
}

function table(headers: string[], rows: (string | Node)[][]) {
  return el(
    'div',
    { className: 'table-wrap' },
    el(
      'table',
      {},
      el('thead', {}, el('tr', {}, ...headers.map((header) => el('th', { scope: 'col' }, header)))),
      el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((content) => el('td', {}, content))))),
    ),
  )
}

function cell(value: unknown): string | Node {
  if (value === null || value === undefined || value === '') return '—'
  if (typeof value === 'object') return generic(value)
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(value)) return time(value)
  return String(value)
}

function time(value: unknown): string | Node {
  if (typeof value !== 'string') return '—'
  return el('time', { dateTime: value, title: value }, new Date(value).toLocaleString())
}

const text = (value: unknown) => (value === null || value === undefined || value === '' ? '—' : String(value))
const firstLine = (value: string) => (value.split('\n')[0] ?? '').slice(0, 80)
const humanize = (name: string) => name.replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').replace(/^./, (c) => c.toUpperCase())
const empty = (message: string) => el('p', { className: 'empty' }, message)

function section(title: string, content: Node) {
  const id = `section-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`
  const node = el('section', {}, el('h2', { id }, title), content)
  node.setAttribute('aria-labelledby', id)
  return node
}

function showError(message: string) {
  errorBox.textContent = message
  errorBox.hidden = false
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]>, ...children: (string | Node)[]) {
  const { dataset, ...rest } = props as Partial<HTMLElement>
  const node = Object.assign(document.createElement(tag), rest)
  if (dataset) Object.assign(node.dataset, dataset)
  node.append(...children)
  return node
}
