/**
 * Durable steps (`ctx.step(name, fn)`): a step's JSON result is stored once
 * per job, at `steps/<jobId>/<hash of name>`, with a create-only write, so
 * the first stored result wins and two racing writers agree on it. A later
 * invocation of the job (a continuation, a retry attempt, a takeover after a
 * crash) gets the stored result back without running `fn`.
 *
 * At least once: a run that dies after `fn`'s side effects but before its
 * result is stored runs `fn` again. A result stored by a worker whose lease
 * is gone is still the result of a real run of `fn`, so it stands.
 *
 * Before a step that is not stored yet, the invocation checks its time: past
 * `invocationLimitMs` (and once it has run a step of its own, so every
 * invocation makes progress) it stops with HandOverSignal, which the worker
 * catches and turns into a continuation (continuation.ts).
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { createHash } from 'node:crypto'
import { z } from 'zod'
import type { Deps } from '../core/deps.ts'
import { JobFailure } from '../core/errors.ts'
import { parseRecord } from '../core/records.ts'
import { randomToken } from '../core/ids.ts'
import { keys } from '../storage/keys.ts'
import { rideOutUnavailable } from '../storage/port.ts'
import { STORAGE_CONCURRENCY, mapBounded } from '../core/concurrency.ts'
import type { FencedWriter } from './fenced-writer.ts'

/** Largest stored step result: step results are state, not files (use `ctx.saveAsset` for those). */
export const MAX_STEP_RESULT_BYTES = 1024 * 1024
export const MAX_STEP_NAME = 200
/**
 * Steps one job may use. Every invocation reads the stored ones before it
 * goes on, so their number bounds that read (1,000 in parallel waves of 16:
 * a few seconds even at 100 ms a call).
 */
export const MAX_STEPS_PER_JOB = 1000

/** Not an error: the worker stops here and hands the job over to a fresh invocation. */
export class HandOverSignal extends Error {
  override name = 'HandOverSignal'
}

const StoredStepSchema = z.object({ name: z.string(), result: z.unknown(), at: z.number() })
type StoredStep = z.infer<typeof StoredStepSchema>

/** The step whose fn is running (saveAsset records it with the file). */
const runningStep = new AsyncLocalStorage<string>()
export const currentStep = (): string | undefined => runningStep.getStore()

export const stepKey = (jobId: string, name: string) => keys.step(jobId, createHash('sha256').update(name).digest('hex').slice(0, 40))

export interface StepRunner {
  step<T>(name: string, fn: () => Promise<T> | T): Promise<T>
  /**
   * Starts no more step fns and waits for those in flight (parallel steps the
   * handler left running when it returned or threw) to end and store their
   * results: the next invocation or attempt must not run one of them again
   * while it still runs here.
   */
  settle(): Promise<void>
  /**
   * True once a step has stopped the run for a hand-over. Sticky: a handler
   * that catches the signal (or wraps it) still hands over, and every later
   * step that is not stored stops the same way.
   */
  handingOver(): boolean
}

/** A step called after its run ended (a parallel branch the handler left behind): it never starts. */
export class StepsClosedError extends Error {
  override name = 'StepsClosedError'
}

/**
 * The `step` of one attempt's handler in one invocation. `invokedAt` is when
 * this invocation started: the invocation limit counts from there.
 */
export function stepRunner(deps: Deps, jobId: string, writer: FencedWriter, invokedAt: number): StepRunner {
  const names = new Set<string>()
  let ranHere = 0
  let closed = false
  let handingOver = false
  /** Step fns started here whose result is not stored yet (or that failed): settled, never rejected. */
  const inFlight = new Set<Promise<void>>()
  const patiently = <T>(call: () => Promise<T>) => rideOutUnavailable(deps.clock, call)
  const readStored = async (key: string) => {
    const blob = await patiently(() => deps.store.read(key))
    return blob ? parseRecord(key, blob.data, StoredStepSchema) : null
  }
  // Read once per run, up front and in parallel: one list of the job's own folder, not a read per step as the handler reaches it.
  let storedSteps: Promise<Map<string, StoredStep>> | null = null
  const loadStored = async () => {
    const found = new Map<string, StoredStep>()
    // A job marks itself before its first store: unmarked, it has none.
    if (writer.stored().state.stepsCompleted === undefined) return found
    const { keys: listed } = await patiently(() => deps.store.list(keys.stepsPrefix(jobId)))
    await mapBounded(listed, STORAGE_CONCURRENCY, async (key) => {
      const stored = await readStored(key)
      if (stored) found.set(key, stored)
    })
    return found
  }
  return {
    async step<T>(name: string, fn: () => Promise<T> | T): Promise<T> {
      if (typeof name !== 'string' || name.length === 0 || name.length > MAX_STEP_NAME) {
        throw new JobFailure('step_name_invalid', `A step name must be 1-${MAX_STEP_NAME} characters.`)
      }
      if (names.has(name)) throw new JobFailure('step_name_repeated', `Step "${name}" was started twice in one run; step names must be unique per job.`)
      if (names.size >= MAX_STEPS_PER_JOB) throw new JobFailure('too_many_steps', `A job may use at most ${MAX_STEPS_PER_JOB} steps; give each step more work.`)
      names.add(name)
      writer.signal.throwIfAborted()
      const key = stepKey(jobId, name)
      storedSteps ??= loadStored()
      const stored = (await storedSteps).get(key)
      if (stored) return stored.result as T
      if (handingOver || (ranHere > 0 && deps.clock.now() - invokedAt >= deps.settings.invocationLimitMs)) {
        handingOver = true
        throw new HandOverSignal(`invocation limit reached before step "${name}"`)
      }
      if (closed) throw new StepsClosedError(`step "${name}" was started after the run ended`)
      const run = runAndStore(name, key, fn)
      const tracked = run.then(
        () => {},
        () => {},
      )
      inFlight.add(tracked)
      void tracked.then(() => inFlight.delete(tracked))
      return run
    },
    async settle() {
      closed = true
      while (inFlight.size > 0) await Promise.all([...inFlight])
    },
    handingOver: () => handingOver,
  }

  async function runAndStore<T>(name: string, key: string, fn: () => Promise<T> | T): Promise<T> {
    // Once per job, before anything is stored: retention lists `steps/<jobId>/` only for a job marked so.
    if (writer.stored().state.stepsCompleted === undefined) {
      await writer.update((state) => ({ state: { ...state, stepsCompleted: state.stepsCompleted ?? 0 }, events: [] }))
    }
    const result = (await runningStep.run(name, fn)) ?? null
    if (!isJson(result)) throw new JobFailure('step_result_not_json', `Step "${name}" returned a value that is not plain JSON.`)
    // `run` tells this run's own store from another's when the answer to the create was lost.
    const data = JSON.stringify({ name, result, at: deps.clock.now(), run: randomToken(9) })
    if (Buffer.byteLength(data) > MAX_STEP_RESULT_BYTES) throw new JobFailure('step_result_too_large', `Step "${name}" returned more than ${MAX_STEP_RESULT_BYTES} bytes; save large output with saveAsset.`)
    // Stored even if the job was canceled meanwhile: it is the result of a real run.
    const created = await patiently(() => deps.store.create(key, data)).catch(() => null)
    // First stored wins: a racing writer's (or our own whose answer was lost) is read back.
    const readBack = created?.ok ? null : await patiently(() => deps.store.read(key))
    const ours = created?.ok === true || readBack?.data === data
    const winner = created?.ok ? { result } : readBack && parseRecord(key, readBack.data, StoredStepSchema)
    if (!winner) throw new Error(`step "${name}": result not stored`)
    ranHere++
    if (ours) {
      await writer.update((state) => ({
        state: { ...state, stepsCompleted: (state.stepsCompleted ?? 0) + 1 },
        events: [{ type: 'step_completed', data: { name } }],
      }))
    }
    return winner.result as T
  }
}

/** Plain JSON that reads back as it was written: no undefined, functions, NaN, class instances. */
function isJson(value: unknown, depth = 0): boolean {
  if (depth > 100) return false
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true
  if (typeof value === 'number') return Number.isFinite(value)
  if (Array.isArray(value)) return value.every((item) => isJson(item, depth + 1))
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) return false
    return Object.values(value).every((item) => isJson(item, depth + 1))
  }
  return false
}
