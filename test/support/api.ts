/**
 * The HTTP API under test, set up one way for every suite: a real local Blobs
 * server, the real function modules served over real HTTP (support/functions.ts)
 * with the environment they read, accounts with credits and an API key each,
 * and the calls the suites make (request, follow a feed, snapshot the stores).
 *
 *   const api = testApi({ kinds: [slow], accounts: { 'acct-a': 1000 } })
 *   beforeAll(() => api.start())
 *   afterAll(() => api.stop())
 *
 * The environment it sets (signing secret, admin token, Blobs context, extra
 * settings) is put back as it was by `stop()`. Every answer is checked against
 * the OpenAPI document: `call` throws on one that does not match, and `stop()`
 * on any seen by other clients (the browser client, raw fetch).
 */
import { randomBytes } from 'node:crypto'
import { createApiKey } from '../../lib/accounts/api-keys.ts'
import { systemClock } from '../../lib/core/clock.ts'
import { createAccount } from '../../lib/credits/index.ts'
import type { JobKind } from '../../lib/kinds/define.ts'
import type { AssetPort } from '../../lib/storage/asset-port.ts'
import type { BlobPort } from '../../lib/storage/port.ts'
import { ASSET_STORE_NAME, STORE_NAME, registerJobKinds } from '../../netlify/app.ts'
import { type TestBlobs, startBlobs } from './blobs.ts'
import { type FunctionServer, type Route, startFunctions } from './functions.ts'

export interface TestApiOptions {
  /** Test kinds served beside the production ones. */
  kinds?: JobKind<any, any>[]
  /** Accounts to create, each with an API key: credits, or null for a key without an account record. */
  accounts?: Record<string, number | null>
  signingSecret?: string
  adminToken?: string
  /** More environment for the functions (settings such as HEARTBEAT_TIMEOUT_SECONDS). */
  env?: Record<string, string>
  /** Puts something (a fault proxy) between the functions and Blobs; its URL is what they use. */
  via?: (blobsUrl: string) => Promise<{ url: string; stop(): Promise<void> }>
  /** Serve only these routes (default: every function in netlify/functions). */
  routes?: Route[]
}

export interface CallInit extends RequestInit {
  /** API key to send: the first account's by default, null for none. */
  key?: string | null
  /** A JSON body (sets Content-Type). */
  json?: unknown
}

export interface FeedEvent {
  seq: number
  type: string
  data: any
}

export interface TestApi {
  start(): Promise<void>
  stop(): Promise<void>
  readonly blobs: TestBlobs
  readonly server: FunctionServer
  readonly url: string
  /** The job store and the generated-files store, directly (not through the proxy). */
  readonly store: BlobPort
  readonly generated: AssetPort
  readonly signingSecret: string
  /** API key of each account in `accounts`. */
  key(account: string): string
  createKey(account: string, label?: string): Promise<string>
  runWorkers: boolean
  /** Waits until every background run has finished. */
  idle(): Promise<void>
  readonly responses: FunctionServer['responses']
  call(path: string, init?: CallInit): Promise<Response>
  /** Long-polls a job's feed (2 s waits) until `done`. */
  follow(jobId: string, key?: string): Promise<{ events: FeedEvent[]; feed: any }>
  /** Every key of the job store with its content, for "nothing was written" checks. */
  contents(): Promise<Map<string, string | undefined>>
  /** Every generated file's key with its metadata. */
  files(): Promise<Map<string, unknown>>
}

export function testApi(options: TestApiOptions = {}): TestApi {
  let running: { blobs: TestBlobs; server: FunctionServer; between?: { url: string; stop(): Promise<void> }; keys: Map<string, string> } | undefined
  const signingSecret = options.signingSecret ?? `test-signing-secret-${randomBytes(24).toString('hex')}`
  const environment: Record<string, string> = {
    JOBS_SIGNING_SECRET: signingSecret,
    ...(options.adminToken === undefined ? {} : { ADMIN_TOKEN: options.adminToken }),
    ...options.env,
  }
  const saved = new Map<string, string | undefined>()
  const started = () => {
    if (!running) throw new Error('testApi: call start() first (in beforeAll)')
    return running
  }
  const firstAccount = Object.keys(options.accounts ?? {})[0]

  const api: TestApi = {
    async start() {
      for (const name of [...Object.keys(environment), 'NETLIFY_BLOBS_CONTEXT']) saved.set(name, process.env[name])
      Object.assign(process.env, environment)
      registerJobKinds(options.kinds ?? [])
      const blobs = await startBlobs()
      const between = options.via ? await options.via(blobs.url) : undefined
      blobs.useAsEnvironment(between?.url)
      const server = await startFunctions(options.routes)
      running = { blobs, server, between, keys: new Map() }
      for (const [account, credits] of Object.entries(options.accounts ?? {})) {
        if (credits !== null) await createAccount(api.store, systemClock, account, credits)
        running.keys.set(account, await api.createKey(account))
      }
    },
    async stop() {
      if (!running) return
      const { blobs, server, between } = running
      running = undefined
      try {
        await server.stop() // throws if an answer did not match the OpenAPI document
      } finally {
        await between?.stop()
        await blobs.stop()
        for (const [name, value] of saved) {
          if (value === undefined) delete process.env[name]
          else process.env[name] = value
        }
      }
    },
    get blobs() {
      return started().blobs
    },
    get server() {
      return started().server
    },
    get url() {
      return started().server.url
    },
    get store() {
      return started().blobs.port(STORE_NAME)
    },
    get generated() {
      return started().blobs.assetPort(ASSET_STORE_NAME)
    },
    signingSecret,
    key(account) {
      const key = started().keys.get(account)
      if (!key) throw new Error(`testApi: no account ${account} in options.accounts`)
      return key
    },
    createKey: (account, label) => createApiKey(api.store, systemClock, account, label),
    get runWorkers() {
      return started().server.runWorkers
    },
    set runWorkers(value) {
      started().server.runWorkers = value
    },
    idle: () => started().server.idle(),
    get responses() {
      return started().server.responses
    },
    async call(path, init = {}) {
      const headers = new Headers(init.headers)
      const key = init.key === undefined ? (firstAccount === undefined ? null : api.key(firstAccount)) : init.key
      if (key) headers.set('authorization', `Bearer ${key}`)
      let body = init.body
      if (init.json !== undefined) {
        headers.set('content-type', 'application/json')
        body = JSON.stringify(init.json)
      }
      const res = await fetch(`${api.url}${path}`, { ...init, headers, body })
      // Fails the test that got an answer the OpenAPI document does not describe.
      started().server.assertContract()
      return res
    },
    async follow(jobId, key) {
      const events: FeedEvent[] = []
      let after = 0
      for (let i = 0; i < 300; i++) {
        const feed = await (await api.call(`/api/jobs/${jobId}/events?after=${after}&wait=2`, { key })).json()
        events.push(...feed.events)
        after = feed.next
        if (feed.done) return { events, feed }
      }
      throw new Error(`job ${jobId} never finished`)
    },
    async contents() {
      const store = api.store
      const { keys } = await store.list('')
      return new Map(await Promise.all(keys.map(async (key) => [key, (await store.read(key))?.data] as const)))
    },
    async files() {
      const generated = api.generated
      const keys = await generated.list('')
      return new Map(await Promise.all(keys.map(async (key) => [key, await generated.metadata(key)] as const)))
    },
  }
  return api
}
