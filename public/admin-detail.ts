/**
 * The job detail of the operator view: state, both error forms, attempts,
 * lock, charge, files, and the event timeline a page at a time, with the
 * actions the server offers (`actions`). Rendered from GET /api/admin/jobs/:id.
 */
import { type Row, cell, el, empty, facts, section, table, text, time } from './admin-dom.ts'

export interface DetailHandlers {
  cancel(jobId: string): void
  retry(jobId: string): void
  moreEvents(jobId: string, after: number): void
}

interface Detail {
  job: Row & { jobId: string; status: string; error: { code: string; message: string } | null; error_internal: string | null }
  attempts: Row[]
  timeline: { events: { seq: number; type: string; data: unknown; ts: number }[]; next: number; firstSeq: number; lastSeq: number; droppedBefore: number | null }
  lock: Row | null
  charge: Row & { entries: { seq: number; type: string; ts: number; data: Row }[]; searched: { after: number; upTo: number }[]; reservation: Row | null }
  assets: Row[]
  webhook: { url: string; webhookId: string; state: string; attempts: { at: string; status: number | null; error: string | null; ms: number }[]; nextAttemptAt: string | null } | null
  actions: { cancel: boolean; retry: boolean }
}

export function renderDetail(container: HTMLElement, detail: Detail, handlers: DetailHandlers) {
  const { job } = detail
  const heading = el('h2', { id: 'detail-title', tabIndex: -1 }, 'Job ', el('code', { className: 'job-id' }, job.jobId))
  const actions = el('div', { className: 'row' })
  if (detail.actions.cancel) {
    actions.append(el('button', { type: 'button', id: 'cancel-job', className: 'danger', onclick: () => handlers.cancel(job.jobId) }, 'Cancel job'))
  }
  // A failed job whose input is kept: it runs again as a new job.
  if (detail.actions.retry) {
    const button = el('button', { type: 'button', id: 'retry-job' }, 'Run again')
    button.onclick = () => {
      button.disabled = true
      handlers.retry(job.jobId)
    }
    actions.append(button)
  }

  container.replaceChildren(
    heading,
    actions,
    facts([
      ['Status', el('span', { className: 'status', dataset: { status: job.status } }, job.status)],
      ['Account', job.account],
      ['Kind', job.kind],
      ['Created', job.createdAt],
      ['Started', job.startedAt],
      ['Finished', job.finishedAt],
      ['Progress', progressText(job.progress)],
      ['Client job id', job.clientJobId],
      ['Source task', job.sourceTaskId],
    ]),
    section(
      'Errors',
      job.error || job.error_internal
        ? facts([
            ['Public (clients see)', job.error ? `${job.error.code}: ${job.error.message}` : null],
            ['Internal (operators only)', job.error_internal ? el('pre', { className: 'internal' }, job.error_internal) : null],
          ])
        : empty('No error.'),
    ),
    section('Attempts', detail.attempts.length ? table(['Attempt', 'Started', 'Heartbeat', 'Ended', 'Outcome'], detail.attempts.map((a) => [text(a.attempt), time(a.startedAt), time(a.heartbeatAt), time(a.endedAt), text(a.outcome)])) : empty('Not started yet.')),
    section('Lock', detail.lock ? facts(Object.entries(detail.lock)) : empty('This kind takes no lock.')),
    section('Charge', chargeView(detail.charge)),
    section('Webhook', webhookView(detail.webhook)),
    section('Files', detail.assets.length ? table(['File', 'Type', 'Bytes', 'SHA-256'], detail.assets.map((a) => [text(a.filename), text(a.contentType), text(a.bytes), el('code', { className: 'hash' }, text(a.sha256))])) : empty('No files.')),
    timelineView(detail, handlers),
  )
  heading.focus()
}

function chargeView(charge: Detail['charge']) {
  const searched = charge.searched.map((w) => `${w.after + 1}–${w.upTo}`).join(', ')
  return el(
    'div',
    {},
    facts([
      ['Charged', charge.creditCharged],
      ['Ledger basis', charge.creditBasis],
      ['Refund pending from', charge.refundFrom],
      ['Reservation', charge.reservation],
    ]),
    charge.entries.length
      ? table(['Seq', 'Type', 'Amount', 'Balance after', 'Reason', 'When'], charge.entries.map((e) => [String(e.seq), e.type, text(e.data.amount), text(e.data.balanceAfter), text(e.data.reason), time(e.ts)]), 'ledger')
      : empty('No ledger entry for this job in the entries looked at.'),
    el('p', { className: 'hint' }, searched ? `Ledger entries looked at: ${searched}.` : 'No ledger position recorded for this job.'),
  )
}

function timelineView(detail: Detail, handlers: DetailHandlers) {
  const { timeline, job } = detail
  const list = el('ol', { className: 'events', id: 'timeline' })
  appendEvents(list, timeline.events)
  const node = section('Timeline', list)
  const note = el('p', { className: 'hint', id: 'timeline-note' }, timelineNote(timeline))
  node.append(note)
  if (timeline.next < timeline.lastSeq) {
    node.append(el('button', { type: 'button', id: 'more-events', onclick: () => handlers.moreEvents(job.jobId, timeline.next) }, 'More events'))
  }
  return node
}

export function appendEvents(list: HTMLElement, events: Detail['timeline']['events']) {
  for (const event of events) {
    list.append(el('li', { dataset: { seq: String(event.seq), type: event.type } }, el('span', { className: 'seq' }, `#${event.seq} `), el('strong', {}, event.type), ' ', time(event.ts), event.data === null ? '' : cell(event.data)))
  }
}

export const timelineNote = (t: Detail['timeline']) =>
  `Events ${t.firstSeq}–${t.lastSeq}${t.droppedBefore ? ` (earlier ones dropped by the log cap)` : ''}; showing up to #${t.next}.`

function progressText(progress: unknown) {
  const p = progress as { message?: string; percent?: number | null } | null
  return p ? `${p.percent == null ? '' : `${Math.round(p.percent)}% `}${p.message ?? ''}` : null
}

export type { Detail }

function webhookView(webhook: Detail['webhook']) {
  if (!webhook) return empty('No webhook.')
  return el(
    'div',
    {},
    facts([
      ['URL', el('code', {}, webhook.url)],
      ['Webhook id', el('code', {}, webhook.webhookId)],
      ['Delivery', el('span', { className: 'status', dataset: { status: webhook.state } }, webhook.state)],
      ['Next attempt', webhook.nextAttemptAt],
    ]),
    webhook.attempts.length
      ? table(['Attempt', 'At', 'Answer', 'Time'], webhook.attempts.map((a, i) => [text(i + 1), time(a.at), a.error ?? text(a.status), `${a.ms} ms`]))
      : empty('Not attempted yet.'),
  )
}
