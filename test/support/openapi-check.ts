/**
 * Checks an HTTP answer against the OpenAPI document: its route and method
 * are described, its status is one the route lists, the headers it must send
 * are there, and a JSON body matches the schema (JSON Schema 2020-12, ajv).
 * The function server runs every answer it records through this, so the
 * document cannot drift from what the code answers.
 */
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import type { ValidateFunction } from 'ajv'
import { z } from 'zod'
import { errorEnvelope, openApiDocument } from '../../lib/http/openapi.ts'
import { apiRoutes, undocumentedPaths } from '../../lib/http/routes/index.ts'
import { jobKinds } from '../../netlify/app.ts'

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020

export interface Answer {
  method: string
  path: string
  status: number
  headers: Record<string, string>
  body: string
}

interface Operation {
  responses: Record<string, { headers?: Record<string, { required?: boolean }>; content?: Record<string, { schema: object }> }>
}

type Document = { paths: Record<string, Record<string, Operation>> }

export interface ContractChecker {
  /** Null when the answer matches the document, else what does not. */
  check(answer: Answer): string | null
}

export function contractChecker(document: Document = openApiDocument(apiRoutes, jobKinds()) as Document): ContractChecker {
  const ajv = addFormats(new Ajv2020({ allErrors: true, strict: false }))
  const compiled = new Map<object, ValidateFunction>()
  const validator = (schema: object) => {
    let validate = compiled.get(schema)
    if (!validate) compiled.set(schema, (validate = ajv.compile(schema)))
    return validate
  }
  const wrongMethod = validator(z.toJSONSchema(errorEnvelope(['method_not_allowed'])))
  // Static paths before parametrized ones, as Netlify routes them.
  const templates = Object.keys(document.paths)
    .map((template) => ({ template, pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`) }))
    .sort((a, b) => Number(a.template.includes('{')) - Number(b.template.includes('{')))

  return {
    check(answer) {
      const where = `${answer.method} ${answer.path} → ${answer.status}`
      if (Object.hasOwn(undocumentedPaths, answer.path)) return null // left out of the document, with a reason there
      const found = templates.find(({ pattern }) => pattern.test(answer.path))
      if (!found) return `${where}: the route is not in the OpenAPI document`
      const operation = document.paths[found.template]![answer.method.toLowerCase()]
      const json = () => {
        try {
          return { value: JSON.parse(answer.body) as unknown }
        } catch {
          return null
        }
      }
      if (!operation) {
        if (answer.method === 'OPTIONS') return null // a CORS preflight: OpenAPI does not describe those
        if (answer.status !== 405) return `${where}: ${answer.method} ${found.template} is not in the OpenAPI document`
        if (answer.method === 'HEAD') return null // no body to check
        const body = json()
        return body && wrongMethod(body.value) ? null : `${where}: the 405 body is not the error envelope`
      }
      const response = operation.responses[String(answer.status)]
      if (!response) return `${where}: status ${answer.status} is not documented for ${answer.method} ${found.template}`
      const headers = new Map(Object.entries(answer.headers).map(([name, value]) => [name.toLowerCase(), value]))
      for (const [name, header] of Object.entries(response.headers ?? {})) {
        if (header.required && !headers.has(name.toLowerCase())) return `${where}: the required header ${name} is missing`
      }
      const content = response.content ?? {}
      const schema = content['application/json']?.schema
      if (answer.method === 'HEAD') return null
      if (!schema) {
        if (Object.keys(content).length === 0 && answer.body !== '') return `${where}: a body where the document says there is none`
        return null
      }
      if (!(headers.get('content-type') ?? '').startsWith('application/json')) return `${where}: Content-Type is not JSON`
      const body = json()
      if (!body) return `${where}: the body is not JSON`
      const validate = validator(schema)
      if (validate(body.value)) return null
      return `${where}: the body does not match the document: ${ajv.errorsText(validate.errors, { separator: '; ' })}\n${answer.body.slice(0, 500)}`
    },
  }
}
