/**
 * A real local Blobs server for tests: temp directory, random port, token,
 * and a count of every storage operation by type. `useBlobs()` gives one per
 * test file, started before its tests and stopped after them.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Store, getStore } from '@netlify/blobs'
import { BlobsServer } from '@netlify/blobs/server'
import { afterAll, beforeAll } from 'vitest'
import { netlifyBlobsAssetPort } from '../../lib/storage/netlify-blobs-assets.ts'
import { netlifyBlobsPort } from '../../lib/storage/netlify-blobs.ts'
import type { AssetPort } from '../../lib/storage/asset-port.ts'
import type { BlobPort } from '../../lib/storage/port.ts'

export interface TestBlobs {
  url: string
  token: string
  siteID: string
  /** Where the server keeps its files (tests that lay out entries by hand). */
  directory: string
  /** Operations seen by the server, by type (get, set, delete, list, getMetadata). */
  ops: Record<string, number>
  resetOps(): void
  /** The SDK's store on this server (`fetch` to put faults between them). */
  sdkStore(storeName: string, options?: { fetch?: typeof globalThis.fetch }): Store
  port(storeName: string): BlobPort
  assetPort(storeName: string): AssetPort
  /** Makes `getStore()` in function code talk to this server (or to a proxy in front of it). */
  useAsEnvironment(via?: string): void
  stop(): Promise<void>
}

export async function startBlobs(): Promise<TestBlobs> {
  const directory = await mkdtemp(join(tmpdir(), 'blobs-test-'))
  const token = `test-token-${Math.random().toString(36).slice(2)}`
  const siteID = 'test-site'
  const ops: Record<string, number> = {}
  const server = new BlobsServer({
    directory,
    token,
    onRequest: ({ type }) => {
      ops[type] = (ops[type] ?? 0) + 1
    },
  })
  const { port } = await server.start()
  const url = `http://localhost:${port}`
  const sdkStore: TestBlobs['sdkStore'] = (name, options = {}) =>
    getStore({ name, siteID, token, edgeURL: url, uncachedEdgeURL: url, consistency: 'strong', ...options })
  return {
    url,
    token,
    siteID,
    directory,
    ops,
    resetOps() {
      for (const key of Object.keys(ops)) delete ops[key]
    },
    sdkStore,
    port: (storeName) => netlifyBlobsPort(sdkStore(storeName)),
    assetPort: (storeName) => netlifyBlobsAssetPort(sdkStore(storeName)),
    useAsEnvironment(via = url) {
      process.env.NETLIFY_BLOBS_CONTEXT = Buffer.from(
        JSON.stringify({ edgeURL: via, uncachedEdgeURL: via, token, siteID, deployID: '0' }),
      ).toString('base64')
    },
    async stop() {
      await server.stop()
      await rm(directory, { recursive: true, force: true })
    },
  }
}

/**
 * One Blobs server for the calling test file: started in `beforeAll`, stopped
 * in `afterAll`. The returned object is usable from the tests and hooks on.
 */
export function useBlobs(): TestBlobs {
  let blobs: TestBlobs | undefined
  beforeAll(async () => {
    blobs = await startBlobs()
  })
  afterAll(async () => {
    await blobs?.stop()
  })
  const started = () => {
    if (!blobs) throw new Error('useBlobs(): the Blobs server starts in beforeAll; use it from a test or hook')
    return blobs
  }
  return {
    get url() {
      return started().url
    },
    get token() {
      return started().token
    },
    get siteID() {
      return started().siteID
    },
    get directory() {
      return started().directory
    },
    get ops() {
      return started().ops
    },
    resetOps: () => started().resetOps(),
    sdkStore: (name, options) => started().sdkStore(name, options),
    port: (name) => started().port(name),
    assetPort: (name) => started().assetPort(name),
    useAsEnvironment: (via) => started().useAsEnvironment(via),
    stop: () => started().stop(),
  }
}
