import type { z } from 'zod'
import type { AssetFile } from '../assets/record.ts'
import type { JobAsset } from '../core/types.ts'
import { type RetryPolicy, checkRetryPolicy } from './retry.ts'

/** What a job handler gets: its input, ways to report, and a stop signal. */
export interface JobContext<Input> {
  jobId: string
  account: string
  input: Input
  /** This attempt's number, from 1 (see `retry` on the kind). */
  attempt: number
  /** Aborted when the job is canceled or this worker lost the job. */
  signal: AbortSignal
  /** Updates the job's progress (message capped at 200 characters) and appends a `progress` event. */
  progress(message: string, percent?: number): Promise<void>
  /** Appends a kind-specific event, e.g. `window_complete`. */
  emit(type: string, data?: unknown): Promise<void>
  /**
   * Stores a generated file linked to this job and its source task, lists it
   * on the job and appends `asset_created`. A file over MAX_GENERATED_ASSET_BYTES
   * throws `JobFailure('asset_too_large')` before anything is written.
   */
  saveAsset(file: AssetFile): Promise<JobAsset>
  /**
   * A durable step: runs `fn` once per job and stores its result (plain JSON,
   * up to 1 MB), which any later run of the job (a continuation into a fresh
   * invocation, a retry attempt) gets back instead of running `fn` again.
   * Names are unique per job (`step_name_repeated` otherwise) and must be
   * the same from run to run: derive them from the input, not from time or
   * randomness. At least once: a crash after `fn`'s side effects but before
   * its result is stored runs `fn` again, so give side effects an
   * idempotency key (e.g. the job id and the step name). Near the invocation
   * limit the job is continued in a fresh invocation before the next step
   * that is not stored yet, by a throw from `step` that the handler must let
   * through; code between steps runs again in each invocation.
   */
  step<T>(name: string, fn: () => Promise<T> | T): Promise<T>
  /**
   * Lets timers run (the heartbeat that keeps the job alive, the cancel check).
   * Call it between CPU-heavy steps: a handler that never awaits blocks them.
   */
  yield(): Promise<void>
}

export interface JobKind<Schema extends z.ZodType = z.ZodType, Result = unknown> {
  kind: string
  input: Schema
  /** A short name for menus ("Summarize a text"); the kind's name if absent. */
  title?: string
  /** One or two sentences for the kind list (`GET /api/kinds`) and forms. */
  description?: string
  /** An input that works, shown to clients as a starting point. */
  example?: z.input<Schema>
  /**
   * What `lockKey` names the resource by, for clients: e.g. `['input.text']`,
   * or `['input.canvas', 'sourceTaskId']` (the first one given). Listed only.
   */
  lockedBy?: string[]
  /** Whether its jobs save files (`ctx.saveAsset`). */
  makesAssets?: boolean
  /** Credits one job of this kind costs (charged once per client job id). Default 0. */
  cost?: number
  /**
   * The resource this job works on, as key parts (checked and joined in
   * `storage/keys.ts`). One live job per resource; omit, or return null,
   * for no lock. `meta` has what the submit says besides the input.
   */
  lockKey?(input: z.infer<Schema>, account: string, meta: { sourceTaskId: string | null }): string[] | null
  /**
   * Attempts after a failure (see kinds/retry.ts). Absent: one attempt. `{}`:
   * 4 attempts, waits of up to 5 s, 10 s, 20 s (cap 60 s). Declare it only
   * for a handler that is safe to run again from the start: a retry repeats
   * its events, files and side effects. A RetryableError or an unexpected
   * error is retried; a JobFailure, a cancel or a lost lock is final.
   */
  retry?: RetryPolicy
  /**
   * What a submit gets while another job holds the resource: 'refuse' (409
   * `resource_locked`, the default) or 'queue' (wait in the resource's line,
   * started in submit order). A submit's own `onBusy` wins.
   */
  onBusy?: 'queue' | 'refuse'
  /** The long work. Its return value is the job's result. */
  run(ctx: JobContext<z.infer<Schema>>): Promise<Result>
}

/** Declares a job kind; the identity function that gives `run` its types. */
export function defineJob<Schema extends z.ZodType, Result>(kind: JobKind<Schema, Result>): JobKind<Schema, Result> {
  checkRetryPolicy(kind.kind, kind.retry)
  return kind
}

export type KindRegistry = ReadonlyMap<string, JobKind>

export function kindRegistry(kinds: readonly JobKind<any, any>[]): KindRegistry {
  const registry = new Map<string, JobKind>()
  for (const kind of kinds) {
    if (!/^[a-z][a-z0-9_-]{0,39}$/.test(kind.kind)) throw new Error(`job kind name "${kind.kind}" must be lowercase a-z 0-9 _ -`)
    if (registry.has(kind.kind)) throw new Error(`job kind "${kind.kind}" is defined twice`)
    checkRetryPolicy(kind.kind, kind.retry)
    registry.set(kind.kind, kind)
  }
  return registry
}
