/**
 * The README's API section against the OpenAPI document, and its quickstart
 * run as written: every status and error code the prose names is one the
 * document gives (for the route its section is about), every error code the
 * document lists is explained, and the quickstart's shell lines work against
 * the real functions.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openApiDocument } from '../lib/http/openapi.ts'
import { apiRoutes } from '../lib/http/routes/index.ts'
import { jobKinds } from '../netlify/app.ts'
import { testApi } from './support/api.ts'

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const section = (from: string) => {
  const start = README.indexOf(`\n${from}\n`)
  const end = README.indexOf('\n## ', start + from.length + 2)
  if (start < 0) throw new Error(`README has no "${from}"`)
  return README.slice(start, end < 0 ? undefined : end)
}

type Operation = { responses: Record<string, { content?: Record<string, { schema: any }> }> }
const document = openApiDocument(apiRoutes, jobKinds()) as unknown as { paths: Record<string, Record<string, Operation>> }
const templateOf = (path: string) => path.replace(/:([A-Za-z_]+)/g, '{$1}')

/** The error codes an answer's envelope may carry, per status. */
function codesOf(operation: Operation): Map<string, string[]> {
  return new Map(
    Object.entries(operation.responses).map(([status, response]) => {
      const code = response.content?.['application/json']?.schema?.properties?.error?.properties?.code
      return [status, (code?.enum as string[] | undefined) ?? []]
    }),
  )
}

/** `**409** \`resource_locked\`` and `**400** \`invalid_request\` / \`unknown_kind\``: a status and the codes right after it. */
function claims(text: string) {
  const out: { status: string; codes: string[] }[] = []
  for (const match of text.matchAll(/\*\*(\d{3})\*\*((?:\s*(?:\/|or)?\s*`[a-z]+(?:_[a-z]+)+`)*)/g)) {
    out.push({ status: match[1]!, codes: [...match[2]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!) })
  }
  return out
}

describe('README API section', () => {
  const api = section('## HTTP API')

  it('links the OpenAPI document and the kind list', () => {
    expect(api).toContain('/api/openapi.json')
    expect(api).toContain('`GET /api/kinds`')
  })

  it('every status and code a route’s section names is one the document gives that route', () => {
    // Route sections are `###`, or `####` under a topic (the console's snapshot).
    const headed = [...api.matchAll(/\n#{3,4} `(GET|POST) (\/api\/[^`?\s]*)[^\n]*\n([\s\S]*?)(?=\n#{3,4} |$)/g)]
    // At least these (a route given a section of its own later is checked too).
    expect(headed.map((m) => `${m[1]} ${m[2]}`)).toEqual(
      expect.arrayContaining(['POST /api/jobs', 'GET /api/jobs/:id', 'GET /api/jobs/:id/events', 'POST /api/jobs/:id/cancel', 'GET /api/admin/jobs']),
    )
    let checked = 0
    for (const [, method, path, body] of headed) {
      const operation = document.paths[templateOf(path!)]?.[method!.toLowerCase()]
      expect(operation, `${method} ${path}`).toBeDefined()
      const codes = codesOf(operation!)
      for (const claim of claims(body!)) {
        if (claim.status === '405') continue // any route, to a method it does not take
        expect(codes.has(claim.status), `${method} ${path}: README says ${claim.status}`).toBe(true)
        for (const code of claim.codes) expect(codes.get(claim.status), `${method} ${path} ${claim.status}`).toContain(code)
        checked++
      }
    }
    expect(checked).toBeGreaterThan(10)
  })

  it('every status and code named anywhere in it is one the document gives some route', () => {
    const all = new Map<string, Set<string>>()
    for (const item of Object.values(document.paths)) {
      for (const operation of Object.values(item)) {
        for (const [status, codes] of codesOf(operation)) {
          const known = all.get(status) ?? all.set(status, new Set()).get(status)!
          for (const code of codes) known.add(code)
        }
      }
    }
    all.set('405', new Set(['method_not_allowed']))
    for (const claim of claims(api)) {
      expect(all.has(claim.status), `README says ${claim.status}`).toBe(true)
      for (const code of claim.codes) expect([...all.get(claim.status)!], `README says ${claim.status} ${code}`).toContain(code)
    }
  })

  it('explains every error code the document lists', () => {
    const codes = new Set<string>()
    for (const item of Object.values(document.paths)) for (const operation of Object.values(item)) for (const list of codesOf(operation).values()) for (const code of list) codes.add(code)
    expect(codes.size).toBeGreaterThan(15)
    for (const code of codes) expect(README, code).toContain(`\`${code}\``)
  })
})

describe('README quickstart, run as written', () => {
  const server = testApi({ accounts: { dev: 100 } })
  let dir: string
  beforeAll(async () => {
    await server.start()
    dir = await mkdtemp(join(tmpdir(), 'readme-'))
  })
  afterAll(async () => {
    await server.stop()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  it('submits, captures the job id and reads its events', async () => {
    const block = /```sh\n(KEY=\$\(cat \.netlify\/dev-api-key\)[\s\S]*?)```/.exec(section('## Quickstart'))?.[1]
    expect(block, 'the quickstart block with the API key').toBeDefined()
    const commands = block!.replace(/#.*$/gm, '')
    expect(commands).not.toContain('…') // no placeholder left to fill in by hand
    await writeFile(join(dir, 'dev-api-key'), server.key('dev'))
    const script = block!.replaceAll('http://localhost:8888', server.url).replace('.netlify/dev-api-key', join(dir, 'dev-api-key'))
    const run = promisify(execFile)
    const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script], {
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` },
      timeout: 30_000,
    })
    const [submitted, feed] = stdout.trim().split('\n').map((line) => JSON.parse(line))
    expect(submitted).toMatchObject({ kind: 'summarize', status: 'queued' })
    expect(feed.jobId).toBe(submitted.jobId)
    expect(feed.events.length).toBeGreaterThan(0)
  })
})
