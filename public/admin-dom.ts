/** Small DOM helpers of the operator view. Everything is inserted as text, never as HTML. */

export type Row = Record<string, unknown>

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> & { dataset?: Record<string, string> } = {}, ...children: (string | Node)[]) {
  const { dataset, ...rest } = props
  const node = Object.assign(document.createElement(tag), rest)
  if (dataset) Object.assign(node.dataset, dataset)
  node.append(...children)
  return node
}

export function table(headers: string[], rows: (string | Node)[][], className = '') {
  return el(
    'div',
    { className: 'table-wrap' },
    el(
      'table',
      { className },
      el('thead', {}, el('tr', {}, ...headers.map((header) => el('th', { scope: 'col' }, header)))),
      el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((content, i) => el('td', { dataset: { label: headers[i] ?? '' } }, content))))),
    ),
  )
}

/** A definition list of facts; values that are objects are shown as wrapped JSON. */
export function facts(entries: [string, unknown][]) {
  const dl = el('dl', { className: 'facts' })
  for (const [name, value] of entries) dl.append(el('dt', {}, name), el('dd', {}, cell(value)))
  return dl
}

export function cell(value: unknown): string | Node {
  if (value === null || value === undefined || value === '') return '—'
  if (value instanceof Node) return value
  if (typeof value === 'object') return el('pre', { className: 'json' }, JSON.stringify(value, null, 2))
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(value)) return time(value)
  return String(value)
}

export function time(value: unknown): string | Node {
  if (typeof value !== 'string' && typeof value !== 'number') return '—'
  const iso = new Date(value).toISOString()
  return el('time', { dateTime: iso, title: iso }, new Date(value).toLocaleString())
}

export const text = (value: unknown) => (value === null || value === undefined || value === '' ? '—' : String(value))
export const humanize = (name: string) => name.replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').replace(/^./, (c) => c.toUpperCase())
export const empty = (message: string) => el('p', { className: 'empty' }, message)

export function section(title: string, ...content: Node[]) {
  const id = `section-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`
  const node = el('section', {}, el('h2', { id }, title), ...content)
  node.setAttribute('aria-labelledby', id)
  return node
}

export function duration(ms: number | null) {
  if (ms === null) return '> 15 min'
  return ms < 1000 ? `≤ ${ms} ms` : ms < 60_000 ? `≤ ${ms / 1000} s` : `≤ ${ms / 60_000} min`
}

/** A grant id for one grant: its time (base36) and 128 random bits, as the server expects. */
export function newGrantId() {
  const random = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('')
  return `grant_${Date.now().toString(36)}${random}`
}
