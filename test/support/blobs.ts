/**
 * A real local Blobs server for tests: temp directory, random port, token,
 * and a count of every storage operation by type.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getStore } from '@netlify/blobs'
import { BlobsServer } from '@netlify/blobs/server'
import { netlifyBlobsPort } from '../../lib/storage/netlify-blobs.ts'
import type { BlobPort } from '../../lib/storage/port.ts'

export interface TestBlobs {
  url: string
  token: string
  siteID: string
  /** Operations seen by the server, by type (get, set, delete, list, getMetadata). */
  ops: Record<string, number>
  resetOps(): void
  port(storeName: string): BlobPort
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
  return {
    url,
    token,
    siteID,
    ops,
    resetOps() {
      for (const key of Object.keys(ops)) delete ops[key]
    },
    port(storeName) {
      return netlifyBlobsPort(
        getStore({ name: storeName, siteID, token, edgeURL: url, uncachedEdgeURL: url, consistency: 'strong' }),
      )
    },
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
