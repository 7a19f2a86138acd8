/**
 * Completion webhooks against a real receiver on loopback: at the domain
 * level on the real local Blobs server with a clock the test moves (the
 * worker's first try, the dispatcher's retries on the backoff schedule, the
 * same webhook-id every time, giving up, retention), the SSRF guard (URLs
 * refused when given, addresses refused when resolved), and over HTTP through
 * the real functions (the account's default webhook and secret, tokens, the
 * README's verification sample, no secret in any log line).
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Webhook } from 'standardwebhooks'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { jobDetail } from '../lib/admin/detail.ts'
import { createAccount } from '../lib/credits/index.ts'
import { submitJob } from '../lib/jobs/submit.ts'
import { runJob } from '../lib/jobs/worker.ts'
import { reap } from '../lib/reaper/reap.ts'
import { runDispatcher } from '../lib/schedule/dispatcher.ts'
import { dueHandlers } from '../lib/schedule/handlers.ts'
import { keys } from '../lib/storage/keys.ts'
import { accountWebhook } from '../lib/webhooks/account.ts'
import { MAX_DELIVERY_ATTEMPTS, MAX_DISPATCHER_SENDS, RETRY_SCHEDULE_MS } from '../lib/webhooks/delivery.ts'
import { WebhookSendError, sendWebhook } from '../lib/webhooks/send.ts'
import { StorageUnavailableError } from '../lib/storage/port.ts'
import { testApi } from './support/api.ts'
import { type StoreOp, hookedStore } from './support/hooked-store.ts'
import { useBlobs } from './support/blobs.ts'
import { manualClock, testDeps } from './support/deps.ts'
import { failing, slow } from './support/kinds.ts'

interface Received {
  headers: Record<string, string>
  body: string
}

/** A webhook receiver on loopback that answers each request with the next status given (then 200). */
async function startReceiver() {
  const received: Received[] = []
  const statuses: number[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      received.push({ headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8') })
      res.statusCode = statuses.shift() ?? 200
      res.end('ok')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    received,
    answer: (...next: number[]) => statuses.push(...next),
    url: (path = '/hooks/jobs') => `http://127.0.0.1:${port}${path}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/**
 * The README's receiver sample: verify with the standardwebhooks library
 * (which also refuses a timestamp more than 5 minutes from its clock), then
 * de-duplicate on webhook-id. `receivedAt`: the test clock's time, for
 * deliveries signed on it.
 */
function verified(secret: string, delivery: Received, receivedAt?: number) {
  if (receivedAt !== undefined) {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(receivedAt)
  }
  try {
    return new Webhook(secret).verify(delivery.body, delivery.headers) as { type: string; data: Record<string, unknown> }
  } finally {
    if (receivedAt !== undefined) vi.useRealTimers()
  }
}

const blobs = useBlobs()
let receiver: Awaited<ReturnType<typeof startReceiver>>
beforeAll(async () => {
  receiver = await startReceiver()
})
afterAll(() => receiver.close())
afterEach(() => {
  receiver.received.length = 0
})

let storeNo = 0
async function setup(allowPrivateTargets = true, fail?: (op: StoreOp, key: string) => boolean) {
  const clock = manualClock(Date.UTC(2026, 11, 1, 12, 0, 0))
  const inner = blobs.port(`webhooks-${++storeNo}`)
  const store = fail ? hookedStore(inner, (op, key) => { if (fail(op, key)) throw new StorageUnavailableError(`injected ${op} failure on ${key}`) }) : inner
  const deps = testDeps(store, { clock, kinds: [slow, failing], settings: { webhookAllowPrivateTargets: allowPrivateTargets } })
  await createAccount(deps.store, clock, 'acct', 100)
  const { secret } = await accountWebhook(deps, 'acct')
  const submit = async (extra: Record<string, unknown> = {}, kind = 'slow') => {
    const input = kind === 'slow' ? { steps: 1, delayMs: 0 } : {}
    return (await submitJob(deps, 'acct', { kind, input, webhookUrl: receiver.url(), ...extra }, null)).body.jobId
  }
  const dispatch = () => runDispatcher(deps, dueHandlers)
  const delivery = async (jobId: string) => {
    const blob = await deps.store.read(keys.webhookDelivery(jobId))
    return blob ? JSON.parse(blob.data) : null
  }
  return { deps, clock, secret, submit, dispatch, delivery }
}

describe('delivery', () => {
  it('POSTs the finished job once, signed so the README’s verification passes; the dispatcher then has nothing to do', async () => {
    const { deps, clock, secret, submit, dispatch, delivery } = await setup()
    const jobId = await submit()
    expect(await runJob(deps, jobId)).toBe('complete')
    expect(receiver.received).toHaveLength(1)
    const payload = verified(secret, receiver.received[0]!, clock.now())
    expect(payload).toMatchObject({ type: 'job.complete', data: { jobId, status: 'complete', result: { steps: 1 } } })
    expect(receiver.received[0]!.headers['webhook-id']).toBe(`msg_${jobId}`)
    expect(await delivery(jobId)).toMatchObject({ state: 'delivered', attempts: [{ status: 200, error: null }], nextAttemptAt: null })

    // Delivered by the worker, which removed the entry its settle filed: the dispatcher reads no job.
    expect((await deps.store.list(keys.duePrefix)).keys).toEqual([])
    clock.advance(90_000)
    expect((await dispatch()).handled).toBe(0)
    expect(receiver.received).toHaveLength(1)
  })

  it('tries again after 5xx on the backoff schedule, with the same webhook-id, until it is delivered', async () => {
    const { deps, clock, secret, submit, dispatch, delivery } = await setup()
    receiver.answer(500, 503)
    const jobId = await submit()
    await runJob(deps, jobId)
    expect(receiver.received).toHaveLength(1)
    const first = await delivery(jobId)
    expect(first).toMatchObject({ state: 'pending', attempts: [{ status: 500, error: 'http_500' }] })
    expect(first.nextAttemptAt).toBe(first.attempts[0].at + RETRY_SCHEDULE_MS[0])

    clock.advance(30_000) // not due yet: nothing is sent
    await dispatch()
    expect(receiver.received).toHaveLength(1)
    clock.advance(31_000)
    await dispatch()
    expect(receiver.received).toHaveLength(2)
    expect((await delivery(jobId)).nextAttemptAt).toBe(clock.now() + RETRY_SCHEDULE_MS[1]!)
    clock.advance(RETRY_SCHEDULE_MS[1]!)
    await dispatch()
    expect(receiver.received).toHaveLength(3)
    expect(await delivery(jobId)).toMatchObject({ state: 'delivered', attempts: [{ status: 500 }, { status: 503 }, { status: 200 }] })

    // Every attempt verifies and carries one id: after de-duplication the receiver saw the job once.
    const ids = new Set(receiver.received.map((delivered) => (verified(secret, delivered, Number(delivered.headers['webhook-timestamp']) * 1000), delivered.headers['webhook-id'])))
    expect([...ids]).toEqual([`msg_${jobId}`])
    clock.advance(24 * 3600_000)
    await dispatch()
    expect(receiver.received).toHaveLength(3)

    const detail = await jobDetail(deps, jobId, { after: 0, limit: 100 })
    expect(detail.webhook).toMatchObject({ url: `${receiver.url()}`, state: 'delivered', attempts: [{ error: 'http_500' }, { error: 'http_503' }, { status: 200 }] })
  })

  it('gives up after the last attempt of the schedule, and at once on 410 Gone', async () => {
    const { deps, clock, submit, dispatch, delivery } = await setup()
    receiver.answer(...Array(MAX_DELIVERY_ATTEMPTS).fill(500))
    const jobId = await submit()
    await runJob(deps, jobId)
    for (const wait of RETRY_SCHEDULE_MS) {
      clock.advance(wait + 1000)
      await dispatch()
    }
    expect(receiver.received).toHaveLength(MAX_DELIVERY_ATTEMPTS)
    expect(await delivery(jobId)).toMatchObject({ state: 'failed', nextAttemptAt: null })
    clock.advance(24 * 3600_000)
    await dispatch()
    expect(receiver.received).toHaveLength(MAX_DELIVERY_ATTEMPTS)

    receiver.received.length = 0
    receiver.answer(410)
    const gone = await submit()
    await runJob(deps, gone)
    clock.advance(3600_000)
    await dispatch()
    expect(receiver.received).toHaveLength(1)
    expect(await delivery(gone)).toMatchObject({ state: 'failed', attempts: [{ status: 410 }] })
  })

  it('tells a failed job with its public error only, and one that ends without its worker (canceled) through the dispatcher', async () => {
    const { deps, clock, secret, submit, dispatch } = await setup()
    const failed = await submit({}, 'failing')
    await runJob(deps, failed)
    const payload = verified(secret, receiver.received[0]!, clock.now())
    expect(payload).toMatchObject({ type: 'job.failed', data: { status: 'failed', error: { code: 'internal_error' } } })
    expect(receiver.received[0]!.body).not.toContain('10.0.3.7')

    receiver.received.length = 0
    const { cancelJob } = await import('../lib/jobs/read.ts')
    const canceled = await submit()
    await cancelJob(deps, 'acct', canceled) // before any worker: settled by cancel, told by the dispatcher
    expect(receiver.received).toHaveLength(0)
    clock.advance(60_000)
    await dispatch()
    expect(receiver.received).toHaveLength(1)
    expect(verified(secret, receiver.received[0]!, clock.now())).toMatchObject({ type: 'job.canceled', data: { jobId: canceled, status: 'canceled' } })
  })

  it('a job settled again by the reaper minutes after it finished is still sent (its entry is filed for then, not for its finish)', async () => {
    let failOnce = true
    const { deps, clock, secret, submit, dispatch, delivery } = await setup(true, (op, key) => {
      if (op !== 'put' || !key.includes('~webhook~') || !failOnce) return false
      failOnce = false
      return true
    })
    await dispatch() // the dispatcher has a cursor from here on
    const jobId = await submit()
    await runJob(deps, jobId) // its settle fails at the webhook entry: nothing is sent, the job stays live
    expect(receiver.received).toHaveLength(0)
    for (let minute = 1; minute <= 5; minute++) {
      clock.advance(60_000)
      await dispatch()
    }
    expect((await reap(deps)).settled).toBe(1)
    for (let minute = 1; minute <= 2; minute++) {
      clock.advance(60_000)
      await dispatch()
    }
    expect(receiver.received).toHaveLength(1)
    expect(verified(secret, receiver.received[0]!, clock.now())).toMatchObject({ type: 'job.complete', data: { jobId } })
    expect(await delivery(jobId)).toMatchObject({ state: 'delivered' })
  })

  it('a dispatcher run has at most a few sends in flight, so slow receivers do not hold up other work', async () => {
    let open = 0
    let most = 0
    const slowServer = http.createServer((req, res) => {
      open++
      most = Math.max(most, open)
      req.resume()
      setTimeout(() => {
        open--
        res.end()
      }, 400)
    })
    await new Promise<void>((resolve) => slowServer.listen(0, '127.0.0.1', resolve))
    const slowUrl = `http://127.0.0.1:${(slowServer.address() as AddressInfo).port}/slow`
    try {
      const { deps, clock, dispatch } = await setup()
      const invoked: string[] = []
      deps.invokeWorker = async (jobId) => void invoked.push(jobId)
      // Twenty finished jobs whose webhooks are due now (their worker's try was refused: 500 first).
      receiver.answer(...Array(20).fill(500))
      for (let i = 0; i < 20; i++) {
        const { jobId } = (await submitJob(deps, 'acct', { kind: 'slow', input: { steps: 1, delayMs: 0 }, webhookUrl: receiver.url() }, null)).body
        await runJob(deps, jobId)
        await deps.store.put(keys.state(jobId), JSON.stringify({ ...JSON.parse((await deps.store.read(keys.state(jobId)))!.data), webhookUrl: slowUrl }))
      }
      // And another account's delayed job, due at the same time.
      await createAccount(deps.store, clock, 'other', 10)
      const delayed = (await submitJob(deps, 'other', { kind: 'slow', input: { steps: 1, delayMs: 0 }, delaySeconds: 30 }, null)).body.jobId
      clock.advance(61_000)
      const report = await dispatch()
      expect(most).toBeGreaterThan(1)
      expect(most).toBeLessThanOrEqual(MAX_DISPATCHER_SENDS)
      expect(invoked).toContain(delayed)
      expect(report.deferred).toBeGreaterThanOrEqual(20 - MAX_DISPATCHER_SENDS)
    } finally {
      await new Promise<void>((resolve) => slowServer.close(() => resolve()))
    }
  })

  it('deletes the delivery record with the job at retention', async () => {
    const { deps, clock, submit, delivery } = await setup()
    const jobId = await submit()
    await runJob(deps, jobId)
    expect(await delivery(jobId)).not.toBeNull()
    clock.advance(deps.settings.retentionMs + 15 * 60_000)
    expect((await reap(deps)).expiredDeleted).toBe(1)
    expect(await delivery(jobId)).toBeNull()
  })
})

describe('where a webhook may go (SSRF)', () => {
  it('refuses at submit what is not https to a public host, writing nothing', async () => {
    const { deps, submit } = await setup(false)
    const before = (await deps.store.list('')).keys.sort()
    for (const url of [
      receiver.url(),
      'http://example.com/hook',
      'https://127.0.0.1/hook',
      'https://localhost/hook',
      'https://localhost./hook',
      'https://api.localhost/hook',
      'https://[::1]/hook',
      'https://10.1.2.3/hook',
      'https://169.254.169.254/latest/meta-data',
      'https://[::ffff:127.0.0.1]/hook',
      'https://[::127.0.0.1]/hook',
      'https://2130706433/hook',
      'https://user:pw@example.com/hook',
      'ftp://example.com/hook',
      'not a url',
    ]) {
      await expect(submit({ webhookUrl: url }), url).rejects.toMatchObject({ status: 400, code: 'invalid_request' })
    }
    expect((await deps.store.list('')).keys.sort()).toEqual(before)
    // A public https URL is taken.
    await expect(submit({ webhookUrl: 'https://hooks.example.com/jobs' })).resolves.toMatch(/^job_/)
  })

  it('refuses, when it connects, a host that resolves to a private or loopback address', async () => {
    const asked: string[] = []
    const toLoopback = (hostname: string, callback: (error: Error | null, addresses: { address: string; family: number }[]) => void) => {
      asked.push(hostname)
      callback(null, [{ address: '127.0.0.1', family: 4 }])
    }
    const port = new URL(receiver.url()).port
    const sent = sendWebhook(`https://hooks.example.com:${port}/hook`, {}, '{}', { allowPrivateTargets: false }, { resolveHost: toLoopback })
    await expect(sent).rejects.toBeInstanceOf(WebhookSendError)
    await expect(sent).rejects.toMatchObject({ reason: 'blocked_address' })
    expect(asked).toEqual(['hooks.example.com'])
    expect(receiver.received).toHaveLength(0)
  })

  it('a job whose URL was taken in development is not delivered where production refuses it', async () => {
    const { deps, submit, delivery } = await setup(true)
    const jobId = await submit()
    deps.settings.webhookAllowPrivateTargets = false
    await runJob(deps, jobId)
    expect(receiver.received).toHaveLength(0)
    expect(await delivery(jobId)).toMatchObject({ state: 'failed', attempts: [{ status: null, error: 'blocked_address' }] })
  })
})

describe('a receiver that is slow', () => {
  it('is given up at the deadline when it never answers, and cut off after its status when it drips its body', async () => {
    const sockets = new Set<import('node:net').Socket>()
    let dripping = 0
    const server = http.createServer((req, res) => {
      if (req.url === '/silent') return // never answers
      res.writeHead(200)
      const drip = setInterval(() => res.write('.'), 50)
      dripping++
      res.on('close', () => {
        clearInterval(drip)
        dripping--
      })
    })
    server.on('connection', (socket) => sockets.add(socket))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      await expect(sendWebhook(`${base}/silent`, {}, '{}', { allowPrivateTargets: true }, { timeoutMs: 300 })).rejects.toMatchObject({ reason: 'timeout' })
      await expect(sendWebhook(`${base}/drip`, {}, '{}', { allowPrivateTargets: true }, { timeoutMs: 300 })).resolves.toEqual({ status: 200 })
      // The sender closed the connection: the receiver's response ends instead of dripping on.
      for (let i = 0; i < 50 && dripping > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
      expect(dripping).toBe(0)
    } finally {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
})

describe('webhooks over HTTP', () => {
  const api = testApi({ kinds: [slow], accounts: { 'acct-hooks': 100 }, env: { WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true' } })
  const logged: string[] = []
  beforeAll(async () => {
    await api.start()
    for (const method of ['log', 'info', 'warn', 'error'] as const) {
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void logged.push(args.map(String).join(' ')))
    }
  })
  afterAll(async () => {
    vi.restoreAllMocks()
    await api.stop()
  })

  const mintSubmitToken = async () => {
    const res = await api.call('/api/tokens', { method: 'POST', json: { scope: { submit: ['slow'] } } })
    expect(res.status).toBe(201)
    return (await res.json()).token as string
  }

  it('sets the account’s default webhook, which token submits use; the secret verifies; no log line holds the secret or the URL’s query', async () => {
    const before = await api.contents()
    for (const body of [{ url: 'ftp://x' }, { url: 'http://10.0.0.1/x' }, { url: 42 }, { other: 1 }]) {
      const res = await api.call('/api/account/webhook', { method: 'PUT', json: body })
      expect(res.status, JSON.stringify(body)).toBe(400)
    }
    expect(await api.contents()).toEqual(before)

    const url = receiver.url('/hooks/default?token=receiver-query-secret')
    const set = await api.call('/api/account/webhook', { method: 'PUT', json: { url } })
    expect(set.status).toBe(200)
    const settings = await set.json()
    expect(settings).toEqual({ url, secret: expect.stringMatching(/^whsec_/) })
    expect(await (await api.call('/api/account/webhook')).json()).toEqual(settings)

    const token = await mintSubmitToken()
    const beforeToken = await api.contents()
    const refused = await api.call('/api/jobs', { method: 'POST', key: token, json: { kind: 'slow', input: { steps: 1, delayMs: 0 }, webhookUrl: receiver.url() } })
    expect(refused.status).toBe(403)
    expect((await refused.json()).error.code).toBe('token_scope')
    expect((await api.call('/api/account/webhook', { key: token })).status).toBe(403)
    expect(await api.contents()).toEqual(beforeToken)

    const res = await api.call('/api/jobs', { method: 'POST', key: token, json: { kind: 'slow', input: { steps: 1, delayMs: 0 } } })
    expect(res.status).toBe(202)
    const { jobId } = await res.json()
    await api.follow(jobId)
    await api.idle()
    expect(receiver.received).toHaveLength(1)
    expect(verified(settings.secret, receiver.received[0]!)).toMatchObject({ type: 'job.complete', data: { jobId } })
    // The sample's check fails for a body or secret that is not the sender's.
    const tampered = { ...receiver.received[0]!, body: receiver.received[0]!.body.replace('complete', 'failed') }
    expect(() => verified(settings.secret, tampered)).toThrow()
    expect(() => verified(`whsec_${Buffer.alloc(32, 7).toString('base64')}`, receiver.received[0]!)).toThrow()

    expect(logged.some((line) => line.includes('webhook delivery'))).toBe(true)
    expect(logged.filter((line) => line.includes(settings.secret.slice(6)) || line.includes('receiver-query-secret'))).toEqual([])
  })

  it('a submit names its own webhook, which wins over the default', async () => {
    const res = await api.call('/api/jobs', { method: 'POST', json: { kind: 'slow', input: { steps: 1, delayMs: 0 }, webhookUrl: receiver.url('/hooks/own') } })
    expect(res.status).toBe(202)
    await api.follow((await res.json()).jobId)
    await api.idle()
    expect(receiver.received.map((delivered) => delivered.headers['webhook-id'])).toHaveLength(1)
  })
})
