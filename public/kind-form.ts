/**
 * The demo's kind menu and forms, from `GET /api/kinds`: each kind's input
 * JSON Schema becomes a fieldset (string → text field or text area,
 * number/integer with its bounds, boolean → checkbox, enum → select, a nested
 * object → a group, anything else → JSON), and the same schema checks what
 * was typed before it is sent. A kind added on the server appears here
 * without a change to this page.
 */

/** The part of JSON Schema (2020-12) that zod emits for kind inputs and this form understands. */
export interface JsonSchema {
  type?: string | string[]
  title?: string
  description?: string
  properties?: Record<string, JsonSchema>
  required?: string[]
  enum?: unknown[]
  default?: unknown
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  minLength?: number
  maxLength?: number
  pattern?: string
}

/** One entry of `GET /api/kinds`. */
export interface KindInfo {
  kind: string
  title: string
  description: string | null
  cost: number
  lock: { by: string[] } | null
  makesAssets: boolean
  input: JsonSchema
  example: Record<string, unknown> | null
}

/** A field the user must fix; the page shows the message and focuses the field. */
export class FormError extends Error {
  override name = 'FormError'
  readonly field: HTMLElement
  constructor(message: string, field: HTMLElement) {
    super(message)
    this.field = field
  }
}

export async function loadKinds(fetchImpl: typeof fetch = fetch): Promise<KindInfo[]> {
  const res = await fetchImpl('/api/kinds', { headers: { accept: 'application/json' } })
  if (!res.ok) throw new Error(`The list of job kinds could not be loaded (HTTP ${res.status}).`)
  return ((await res.json()) as { kinds: KindInfo[] }).kinds
}

/** Texts that may be longer than this (and follow no pattern) get a text area. */
const SHORT_TEXT = 200

/** A fieldset for a kind, generated from its input schema and filled with its example. */
export function kindFieldset(kind: KindInfo): HTMLFieldSetElement {
  const fieldset = el('fieldset', { className: 'generated' })
  fieldset.dataset.kind = kind.kind
  fieldset.append(el('legend', {}, kind.title))
  if (kind.description) fieldset.append(el('p', { className: 'hint' }, kind.description))
  appendFields(fieldset, kind.input, kind.example ?? {}, kind.kind, [])
  return fieldset
}

function appendFields(into: HTMLElement, schema: JsonSchema, values: Record<string, unknown>, kind: string, path: string[]) {
  const required = new Set(schema.required ?? [])
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const at = [...path, name]
    const id = `${kind}-${at.map(kebab).join('-')}`
    const label = property.title ?? humanize(name)
    const optional = !required.has(name)
    const value = values[name] ?? property.default
    const shape = shapeOf(property)
    if (shape === 'object') {
      const group = el('fieldset', { className: 'group' })
      group.dataset.path = at.join('.')
      group.dataset.optional = String(optional)
      group.append(el('legend', {}, label, ...(optional ? [' ', el('span', { className: 'optional' }, '(optional)')] : [])))
      if (property.description) group.append(el('p', { className: 'hint' }, property.description))
      appendFields(group, property, (value as Record<string, unknown>) ?? {}, kind, at)
      into.append(group)
      continue
    }
    const control: HTMLElement = controlFor(shape, property, value, optional)
    control.id = id
    control.setAttribute('name', at.join('.'))
    control.dataset.path = at.join('.')
    control.dataset.shape = shape
    control.dataset.label = label
    if (!optional) control.dataset.required = 'true'
    const text = [label, ...(optional ? [' ', el('span', { className: 'optional' }, '(optional)')] : [])]
    if (property.description) control.setAttribute('aria-describedby', `${id}-hint`)
    const hint = property.description ? [el('p', { className: 'hint', id: `${id}-hint` }, property.description)] : []
    if (shape === 'boolean') into.append(el('label', { className: 'check', htmlFor: id }, control, ' ', ...text), ...hint)
    else into.append(el('label', { htmlFor: id }, ...text), control, ...hint)
  }
}

type Shape = 'object' | 'boolean' | 'enum' | 'integer' | 'number' | 'string' | 'text' | 'json'
type Control = HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement

function shapeOf(schema: JsonSchema): Shape {
  if (schema.enum) return 'enum'
  if (schema.type === 'object' && schema.properties) return 'object'
  if (schema.type === 'boolean' || schema.type === 'integer' || schema.type === 'number') return schema.type
  if (schema.type === 'string') return schema.pattern !== undefined || (schema.maxLength !== undefined && schema.maxLength <= SHORT_TEXT) ? 'string' : 'text'
  return 'json'
}

function controlFor(shape: Shape, schema: JsonSchema, value: unknown, optional: boolean): Control {
  if (shape === 'enum') {
    const select = document.createElement('select')
    if (optional) select.append(new Option('—', ''))
    for (const option of schema.enum!) select.append(new Option(String(option), JSON.stringify(option), false, option === value))
    return select
  }
  if (shape === 'text' || shape === 'json') {
    const area = document.createElement('textarea')
    area.rows = shape === 'text' ? 6 : 3
    area.spellcheck = false
    if (shape === 'json') area.placeholder = 'JSON'
    area.value = shape === 'text' ? (typeof value === 'string' ? value : '') : value === undefined ? '' : JSON.stringify(value)
    return area
  }
  const input = document.createElement('input')
  if (shape === 'boolean') {
    input.type = 'checkbox'
    input.checked = value === true
  } else if (shape === 'integer' || shape === 'number') {
    input.type = 'number'
    input.inputMode = shape === 'integer' ? 'numeric' : 'decimal'
    input.step = shape === 'integer' ? '1' : 'any'
    const min = schema.minimum ?? schema.exclusiveMinimum
    const max = schema.maximum ?? schema.exclusiveMaximum
    if (min !== undefined) input.min = String(min)
    if (max !== undefined) input.max = String(max)
    if (typeof value === 'number') input.value = String(value)
  } else {
    input.type = 'text'
    input.autocomplete = 'off'
    input.spellcheck = false
    if (schema.maxLength !== undefined) input.maxLength = schema.maxLength
    if (typeof value === 'string') input.value = value
  }
  return input
}

/**
 * The input typed into a generated fieldset, checked against its schema:
 * a `FormError` names the first field to fix.
 */
export function readKindFieldset(fieldset: HTMLFieldSetElement, schema: JsonSchema): Record<string, unknown> {
  return readObject(fieldset, schema, [])!
}

function readObject(root: HTMLElement, schema: JsonSchema, path: string[]): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {}
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const at = [...path, name].join('.')
    if (shapeOf(property) === 'object') {
      const group = root.querySelector<HTMLFieldSetElement>(`fieldset[data-path="${at}"]`)!
      const filled = [...group.querySelectorAll<Control>('[data-path]')].some((c) => (c instanceof HTMLInputElement && c.type === 'checkbox' ? c.checked : c.value.trim() !== ''))
      if (!filled && group.dataset.optional === 'true') continue
      out[name] = readObject(group, property, [...path, name])
      continue
    }
    const control = root.querySelector<Control>(`[data-path="${at}"]`)!
    const value = readControl(control, property)
    if (value !== undefined) out[name] = value
  }
  return out
}

function readControl(control: Control, schema: JsonSchema): unknown {
  const label = control.dataset.label ?? control.name
  const required = control.dataset.required === 'true'
  if (control instanceof HTMLInputElement && control.type === 'checkbox') return control.checked ? true : required ? false : undefined
  const raw = control.value
  if (raw.trim() === '') {
    if (required) throw new FormError(`${label} is required.`, control)
    return undefined
  }
  switch (control.dataset.shape as Shape) {
    case 'enum':
      return JSON.parse(raw)
    case 'integer':
    case 'number': {
      const value = Number(raw)
      const whole = control.dataset.shape === 'integer'
      const low = schema.minimum ?? schema.exclusiveMinimum ?? -Infinity
      const high = schema.maximum ?? schema.exclusiveMaximum ?? Infinity
      const outside = value < low || value > high || value === schema.exclusiveMinimum || value === schema.exclusiveMaximum
      if (!Number.isFinite(value) || (whole && !Number.isInteger(value)) || outside) {
        throw new FormError(`${label} must be a ${whole ? 'whole number' : 'number'}${bounds(low, high)}.`, control)
      }
      return value
    }
    case 'json':
      try {
        return JSON.parse(raw)
      } catch {
        throw new FormError(`${label} must be JSON.`, control)
      }
    default: {
      if (schema.minLength !== undefined && raw.length < schema.minLength) throw new FormError(`${label} must be at least ${schema.minLength} characters.`, control)
      if (schema.maxLength !== undefined && raw.length > schema.maxLength) throw new FormError(`${label} can be at most ${schema.maxLength} characters.`, control)
      if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(raw)) {
        throw new FormError(`${label} is not in the expected form${schema.description ? `: ${schema.description}` : ''}.`, control)
      }
      return raw
    }
  }
}

const bounds = (low: number, high: number) =>
  Number.isFinite(low) && Number.isFinite(high) ? ` from ${low} to ${high}` : Number.isFinite(low) ? ` of at least ${low}` : Number.isFinite(high) ? ` of at most ${high}` : ''

const kebab = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase()
const humanize = (name: string) => {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/[_-]+/g, ' ').toLowerCase()
  return words.charAt(0).toUpperCase() + words.slice(1)
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]>, ...children: (string | Node)[]) {
  const node = Object.assign(document.createElement(tag), props)
  node.append(...children)
  return node
}
