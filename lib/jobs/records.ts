/**
 * Reading a job's two records: its spec (what submit stored) and its state
 * (what the worker, cancel or the reaper wrote). A live job's spec is at
 * `queue/<job>` (the live index the reaper walks); a job that waits for its
 * start time or its turn on a resource keeps it at `waiting/<job>` until it
 * starts (see launch.ts).
 */
import { parseRecord } from '../core/records.ts'
import { type JobSpec, JobSpecSchema, type JobState, JobStateSchema } from '../core/types.ts'
import { keys } from '../storage/keys.ts'
import type { BlobPort } from '../storage/port.ts'

export interface StoredState {
  state: JobState
  version: string
}

/** A job's state; throws `CorruptRecordError` for a record it cannot parse. */
export async function readState(store: BlobPort, jobId: string): Promise<StoredState | null> {
  const key = keys.state(jobId)
  const blob = await store.read(key)
  return blob ? { state: parseRecord(key, blob.data, JobStateSchema), version: blob.version } : null
}

/**
 * A live job's spec, started (`queue/`) or waiting (`waiting/`); the started
 * one wins when both exist (a start that died before deleting the waiting
 * copy). A start creates `queue/` before it deletes `waiting/`, so a job
 * that moved between the first two reads is found by a third.
 * Throws `CorruptRecordError` for a record it cannot parse.
 */
export async function readSpec(store: BlobPort, jobId: string): Promise<JobSpec | null> {
  const started = await readSpecAt(store, keys.spec(jobId))
  if (started) return started
  const waiting = await readSpecAt(store, keys.waitingSpec(jobId))
  return waiting ?? (await readSpecAt(store, keys.spec(jobId)))
}

/**
 * The same answer as `readSpec` in exactly two reads, for lookups whose
 * number of reads must not tell whether (and how) a job exists: the waiting
 * copy first, so a job that starts between the reads is found started.
 */
export async function readSpecEverywhere(store: BlobPort, jobId: string): Promise<JobSpec | null> {
  const waiting = await readSpecAt(store, keys.waitingSpec(jobId))
  const started = await readSpecAt(store, keys.spec(jobId))
  return started ?? waiting
}

/** The spec at one key, with its version. */
export async function readStoredSpec(store: BlobPort, key: string): Promise<{ spec: JobSpec; version: string } | null> {
  const blob = await store.read(key)
  return blob ? { spec: parseRecord(key, blob.data, JobSpecSchema), version: blob.version } : null
}

/** A started job's spec (`queue/`) only. */
export const readStartedSpec = (store: BlobPort, jobId: string) => readSpecAt(store, keys.spec(jobId))

const readSpecAt = async (store: BlobPort, key: string) => (await readStoredSpec(store, key))?.spec ?? null

/** The kept spec of a failed job (see keepFailedSpec in state.ts); null when none was kept. */
export async function readFailedSpec(store: BlobPort, jobId: string): Promise<JobSpec | null> {
  const key = keys.failedSpec(jobId)
  const blob = await store.read(key)
  return blob ? parseRecord(key, blob.data, JobSpecSchema) : null
}

/** Moves a waiting spec into the live index, marked started; null if another start was first. */
export async function markStarted(deps: { store: BlobPort }, spec: JobSpec, now: number): Promise<JobSpec | null> {
  const started: JobSpec = { ...spec, dispatchedAt: now }
  if (!(await deps.store.create(keys.spec(spec.jobId), JSON.stringify(started))).ok) return null
  await deps.store.delete(keys.waitingSpec(spec.jobId))
  return started
}
