/**
 * Another account's job answers 404 exactly like an id that exists nowhere,
 * down to the storage reads behind the answer: a different count would let a
 * caller time whether an id exists.
 */
import { describe, expect, it } from 'vitest'
import type { Deps } from '../lib/deps.ts'
import { ApiError } from '../lib/errors.ts'
import { cancelJob, getJob, readFeed } from '../lib/jobs.ts'
import { randomIds } from '../lib/ids.ts'
import { memoryPort } from '../lib/storage/memory.ts'
import type { BlobPort } from '../lib/storage/port.ts'
import { submitJob } from '../lib/submit.ts'
import { runJob } from '../lib/worker.ts'
import { testDeps } from './support/deps.ts'
import { hanging, slow } from './support/kinds.ts'

/** The memory store, with every operation recorded as `op key`. */
function recordingPort(): BlobPort & { log: string[] } {
  const inner = memoryPort()
  const log: string[] = []
  return {
    log,
    read: (key) => (log.push(`read ${key}`), inner.read(key)),
    create: (key, data) => (log.push(`create ${key}`), inner.create(key, data)),
    replace: (key, data, version) => (log.push(`replace ${key}`), inner.replace(key, data, version)),
    put: (key, data) => (log.push(`put ${key}`), inner.put(key, data)),
    delete: (key) => (log.push(`delete ${key}`), inner.delete(key)),
    list: (prefix, options) => (log.push(`list ${prefix}`), inner.list(prefix, options)),
  }
}

async function setup() {
  const store = recordingPort()
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const deps = testDeps(store, { kinds: [slow, hanging(gate)] })
  const submit = async (kind: string, input: unknown) => {
    const { status, body } = await submitJob(deps, 'owner', { kind, input }, null)
    expect(status).toBe(202)
    return body.jobId
  }
  const queued = await submit('slow', { steps: 1, delayMs: 0 })
  const finished = await submit('slow', { steps: 1, delayMs: 0 })
  expect(await runJob(deps, finished)).toBe('complete')
  const running = await submit('hanging', { resource: 'r1' })
  const worker = runJob(deps, running)
  await expect.poll(async () => (await getJob(deps, 'owner', running)).status).toBe('running')
  return { deps, store, ids: { queued, running, finished }, stop: async () => (release(), await worker) }
}

/** Storage operations one lookup costs, keys shown with the id replaced, so paths compare. */
async function lookupCost(deps: Deps, store: { log: string[] }, jobId: string, lookup: typeof getJob) {
  store.log.length = 0
  const error = await lookup(deps, 'stranger', jobId).then(
    () => null,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(ApiError)
  expect((error as ApiError).status).toBe(404)
  return store.log.map((entry) => entry.replace(jobId, '<id>'))
}

describe('404 for another account costs what a missing id costs', () => {
  const lookups = {
    status: getJob,
    feed: (deps: Deps, account: string, jobId: string) => readFeed(deps, account, jobId, { after: 0, limit: 10, waitSeconds: 0 }),
    cancel: cancelJob,
  }
  for (const [name, lookup] of Object.entries(lookups)) {
    it(`${name}: the same reads of the same keys, whether the id is queued, running, finished or nowhere`, async () => {
      const { deps, store, ids, stop } = await setup()
      try {
        const missing = randomIds('job') // well formed, never stored
        const nowhere = await lookupCost(deps, store, missing, lookup as typeof getJob)
        expect(nowhere.length).toBeGreaterThan(0)
        expect(nowhere.every((op) => op.startsWith('read '))).toBe(true)
        for (const id of Object.values(ids)) {
          expect(await lookupCost(deps, store, id, lookup as typeof getJob)).toEqual(nowhere)
        }
        // The owner still sees every one of them.
        for (const id of Object.values(ids)) expect((await getJob(deps, 'owner', id)).jobId).toBe(id)
      } finally {
        await stop()
      }
    })
  }
})
