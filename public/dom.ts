/** Small DOM helpers shared by the demo page's modules. */

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]>, ...children: (string | Node)[]) {
  const node = Object.assign(document.createElement(tag), props)
  node.append(...children)
  return node
}

export function field<T extends HTMLElement>(fieldset: HTMLFieldSetElement, name: string): T {
  return fieldset.querySelector<T>(`[name="${name}"]`)!
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

export const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text)
