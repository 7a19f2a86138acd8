/**
 * For `npm run bench`: peak memory of the download function while it serves
 * a large generated file. The local BlobsServer's GET collects the whole
 * file into one Buffer before answering (node_modules/@netlify/blobs/dist/
 * server.js, `get`), which production Blobs does not do; so the server runs
 * in a child process and what is sampled here is the function side alone:
 * the real `netlify/functions/asset.ts` handler, its Blobs fetch, and a
 * client that reads the body as a stream.
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import v8 from 'node:v8'
import vm from 'node:vm'
import type { Context } from '@netlify/functions'
import { getStore } from '@netlify/blobs'
import { createApiKey } from '../lib/accounts/api-keys.ts'
import type { AssetRecord } from '../lib/assets/record.ts'
import { systemClock } from '../lib/core/clock.ts'
import { randomIds } from '../lib/core/ids.ts'
import { assetKeys } from '../lib/storage/keys.ts'
import type { AssetPort } from '../lib/storage/asset-port.ts'
import { ASSET_PART_BYTES } from '../lib/assets/parts.ts'
import { netlifyBlobsAssetPort } from '../lib/storage/netlify-blobs-assets.ts'
import { netlifyBlobsPort } from '../lib/storage/netlify-blobs.ts'
import { ASSET_STORE_NAME, STORE_NAME, assetLinkKey } from '../netlify/app.ts'
import { assetLinks } from '../lib/assets/links.ts'
import { createClient } from '../lib/client/index.ts'
import download from '../netlify/functions/asset.ts'

export interface DownloadMemory {
  assetBytes: number
  peakRssIncrease: number
  peakArrayBuffersIncrease: number
  baselineRss: number
  ms: number
  chunks: number
  samples: number
}

const CHUNK = 1024 * 1024

/** A child process serving a BlobsServer on `directory`; resolves once it listens. */
async function blobsServerChild(directory: string, token: string) {
  const code = `
    import { BlobsServer } from '@netlify/blobs/server'
    const server = new BlobsServer({ directory: ${JSON.stringify(directory)}, token: ${JSON.stringify(token)} })
    const { port } = await server.start()
    console.log(port)
    process.stdin.resume()
    process.stdin.on('end', () => server.stop().then(() => process.exit(0)))
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (status) => reject(new Error(`blobs server child exited (${status})`)))
    child.stdout.once('data', (data: Buffer) => resolve(Number(String(data).trim())))
  })
  return {
    url: `http://localhost:${port}`,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.stdin.end() // it stops its server and exits
      await exited
    },
  }
}

/** `count` chunks of `chunk`, as a stream: the file is never whole in this process. */
function repeated(chunk: Uint8Array, count: number) {
  let sent = 0
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent++ < count) controller.enqueue(chunk)
      else controller.close()
    },
  })
}

const PART_CHUNKS = ASSET_PART_BYTES / CHUNK

/** Stores `count` repetitions of `chunk` the way saveJobAsset lays out a large file (parts, record last), streamed in. */
async function storeInParts(assets: AssetPort, asset: AssetRecord, chunk: Uint8Array, count: number) {
  const parts = Math.ceil(count / PART_CHUNKS)
  for (let n = 1; n < parts; n++) await assets.put(assetKeys.part(asset.assetId, n), repeated(chunk, Math.min(PART_CHUNKS, count - n * PART_CHUNKS)), {})
  await assets.put(assetKeys.asset(asset.assetId), repeated(chunk, Math.min(PART_CHUNKS, count)), asset)
}

export async function measureDownloadMemory(megabytes = 200): Promise<DownloadMemory> {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  const directory = await mkdtemp(join(os.tmpdir(), 'blobs-bench-download-'))
  const token = `bench-${randomBytes(8).toString('hex')}`
  const server = await blobsServerChild(directory, token)
  const siteID = 'bench-download'
  const previousContext = process.env.NETLIFY_BLOBS_CONTEXT
  const previousSecret = process.env.JOBS_SIGNING_SECRET
  // A deploy without its signing secret refuses every request: give this one a secret as `npm run dev` does.
  process.env.JOBS_SIGNING_SECRET ??= randomBytes(32).toString('hex')
  try {
    const open = (name: string) => getStore({ name, siteID, token, edgeURL: server.url, uncachedEdgeURL: server.url, consistency: 'strong' })
    const apiKey = await createApiKey(netlifyBlobsPort(open(STORE_NAME)), systemClock, 'bench')

    // Store the file streamed in: one 1 MB random chunk repeated, hashed the same way first.
    const chunk = randomBytes(CHUNK)
    const hash = createHash('sha256')
    for (let i = 0; i < megabytes; i++) hash.update(chunk)
    const now = Date.now()
    const asset: AssetRecord = {
      assetId: randomIds('asset'),
      account: 'bench',
      jobId: randomIds('job'),
      sourceTaskId: null,
      filename: 'bench.bin',
      contentType: 'application/octet-stream',
      bytes: megabytes * CHUNK,
      sha256: hash.digest('hex'),
      createdAt: now,
      expiresAt: now + 3600_000,
      partBytes: ASSET_PART_BYTES,
    }
    await storeInParts(netlifyBlobsAssetPort(open(ASSET_STORE_NAME)), asset, chunk, megabytes)

    // The function finds Blobs the way it does on Netlify: through the environment.
    process.env.NETLIFY_BLOBS_CONTEXT = Buffer.from(
      JSON.stringify({ edgeURL: server.url, uncachedEdgeURL: server.url, token, siteID, deployID: '0' }),
    ).toString('base64')
    gc()
    const baseline = process.memoryUsage()
    let peakRss = baseline.rss
    let peakArrayBuffers = baseline.arrayBuffers
    let samples = 0
    const sample = () => {
      const usage = process.memoryUsage()
      peakRss = Math.max(peakRss, usage.rss)
      peakArrayBuffers = Math.max(peakArrayBuffers, usage.arrayBuffers)
      samples++
    }
    const sampler = setInterval(sample, 5)

    const t0 = performance.now()
    const req = new Request(`http://bench.local/api/assets/${asset.assetId}`, { headers: { authorization: `Bearer ${apiKey}` } })
    const res = await download(req, { params: { id: asset.assetId } } as unknown as Context)
    if (res.status !== 200 || !res.body) throw new Error(`download answered ${res.status}`)
    const received = createHash('sha256')
    let bytes = 0
    let chunks = 0
    const reader = res.body.getReader()
    for (let next = await reader.read(); !next.done; next = await reader.read()) {
      received.update(next.value)
      bytes += next.value.byteLength
      if (++chunks % 16 === 0) sample()
    }
    const ms = performance.now() - t0
    clearInterval(sampler)
    sample()
    if (bytes !== asset.bytes || received.digest('hex') !== asset.sha256) throw new Error('downloaded bytes differ from the stored file')
    if (res.headers.get('content-length') !== String(asset.bytes)) throw new Error('wrong Content-Length')
    return {
      assetBytes: asset.bytes,
      peakRssIncrease: peakRss - baseline.rss,
      peakArrayBuffersIncrease: peakArrayBuffers - baseline.arrayBuffers,
      baselineRss: baseline.rss,
      ms,
      chunks,
      samples,
    }
  } finally {
    if (previousContext === undefined) delete process.env.NETLIFY_BLOBS_CONTEXT
    else process.env.NETLIFY_BLOBS_CONTEXT = previousContext
    if (previousSecret === undefined) delete process.env.JOBS_SIGNING_SECRET
    await server.stop()
    await rm(directory, { recursive: true, force: true })
  }
}

export interface RangedDownload {
  assetBytes: number
  ms: number
  requests: number
  largestAnswer: number
  /** Blobs requests the download function made: HEAD (record) and GET (parts). */
  blobsHeads: number
  blobsGets: number
  /** Bytes the function read from Blobs, over the file's size (1 = only what was sent). */
  readRatio: number
  /** The last part alone (`Range` of its 8 MiB): time and Blobs requests. */
  lastPart: { ms: number; heads: number; gets: number; bytesRead: number }
}

/**
 * The client's `downloadAsset` fetching a large file in 8 MiB ranges through
 * the real download handler (its `fetch` calls the handler directly), with a
 * signed link; every Blobs request the handler makes is counted.
 */
export async function measureRangedDownload(megabytes = 200): Promise<RangedDownload> {
  const directory = await mkdtemp(join(os.tmpdir(), 'blobs-bench-ranges-'))
  const token = `bench-${randomBytes(8).toString('hex')}`
  const server = await blobsServerChild(directory, token)
  const siteID = 'bench-ranges'
  const previous = { context: process.env.NETLIFY_BLOBS_CONTEXT, secret: process.env.JOBS_SIGNING_SECRET }
  process.env.JOBS_SIGNING_SECRET ??= randomBytes(32).toString('hex')
  const realFetch = globalThis.fetch
  const blobs = { heads: 0, gets: 0, bytes: 0 }
  try {
    const open = (name: string) => getStore({ name, siteID, token, edgeURL: server.url, uncachedEdgeURL: server.url, consistency: 'strong' })
    const chunk = randomBytes(CHUNK)
    const hash = createHash('sha256')
    for (let i = 0; i < megabytes; i++) hash.update(chunk)
    const now = Date.now()
    const asset: AssetRecord = {
      assetId: randomIds('asset'),
      account: 'bench',
      jobId: randomIds('job'),
      sourceTaskId: null,
      filename: 'bench.bin',
      contentType: 'application/octet-stream',
      bytes: megabytes * CHUNK,
      sha256: hash.digest('hex'),
      createdAt: now,
      expiresAt: now + 3600_000,
      partBytes: ASSET_PART_BYTES,
    }
    await storeInParts(netlifyBlobsAssetPort(open(ASSET_STORE_NAME)), asset, chunk, megabytes)
    process.env.NETLIFY_BLOBS_CONTEXT = Buffer.from(
      JSON.stringify({ edgeURL: server.url, uncachedEdgeURL: server.url, token, siteID, deployID: '0' }),
    ).toString('base64')
    // Count what the handler asks of Blobs (the SDK calls the global fetch).
    globalThis.fetch = async (input, init) => {
      const res = await realFetch(input, init)
      if (String(input).startsWith(server.url)) {
        if (init?.method === 'head' || init?.method === 'HEAD') blobs.heads++
        else if ((!init?.method || init.method.toLowerCase() === 'get') && res.body) {
          blobs.gets++
          const counter = new TransformStream<Uint8Array, Uint8Array>({
            transform(part, controller) {
              blobs.bytes += part.byteLength
              controller.enqueue(part)
            },
          })
          return new Response(res.body.pipeThrough(counter), { status: res.status, statusText: res.statusText, headers: res.headers })
        }
      }
      return res
    }
    const link = assetLinks(assetLinkKey(), asset.account, now).link(asset.assetId)
    let requests = 0
    let largestAnswer = 0
    const client = createClient({
      baseUrl: 'http://bench.local',
      apiKey: 'unused: the signed link is the credential',
      fetch: async (input, init) => {
        requests++
        const res = await download(new Request(input, init), { params: { id: asset.assetId } } as unknown as Context)
        largestAnswer = Math.max(largestAnswer, Number(res.headers.get('content-length') ?? 0))
        return res
      },
    })
    const t0 = performance.now()
    const blob = await client.downloadAsset(link) // the client checks the sha256 itself
    const ms = performance.now() - t0
    if (blob.size !== asset.bytes) throw new Error('downloaded size differs from the stored file')
    const whole = { ...blobs }

    blobs.heads = blobs.gets = blobs.bytes = 0
    const start = asset.bytes - ASSET_PART_BYTES
    const t1 = performance.now()
    const res = await download(
      new Request(`http://bench.local${link}`, { headers: { range: `bytes=${start}-` } }),
      { params: { id: asset.assetId } } as unknown as Context,
    )
    const tail = await res.arrayBuffer()
    const lastMs = performance.now() - t1
    if (res.status !== 206 || tail.byteLength !== ASSET_PART_BYTES) throw new Error(`last part answered ${res.status} with ${tail.byteLength} bytes`)
    return {
      assetBytes: asset.bytes,
      ms,
      requests,
      largestAnswer,
      blobsHeads: whole.heads,
      blobsGets: whole.gets,
      readRatio: whole.bytes / asset.bytes,
      lastPart: { ms: lastMs, heads: blobs.heads, gets: blobs.gets, bytesRead: blobs.bytes },
    }
  } finally {
    globalThis.fetch = realFetch
    if (previous.context === undefined) delete process.env.NETLIFY_BLOBS_CONTEXT
    else process.env.NETLIFY_BLOBS_CONTEXT = previous.context
    if (previous.secret === undefined) delete process.env.JOBS_SIGNING_SECRET
    await server.stop()
    await rm(directory, { recursive: true, force: true })
  }
}

// Run alone: node scripts/bench-download.ts
if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await measureDownloadMemory(Number(process.argv[2] ?? 200))
  console.log(JSON.stringify(result, null, 2))
  console.log(JSON.stringify(await measureRangedDownload(Number(process.argv[2] ?? 200)), null, 2))
}
