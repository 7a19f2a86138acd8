/**
 * A simulated `@netlify/blobs` Store, so the simulation runs the REAL Blobs
 * adapter (lib/storage/netlify-blobs.ts) and its ambiguity handling: the
 * owner-token read-back after an answer it cannot trust is one more call,
 * and other actors run between the write and the read-back.
 *
 * Every SDK call is a scheduler step over the atomic store, with a fault
 * chosen by the seed (the scheduler's fault rates):
 * - before (`before`): a conditional write gets netlify/primitives#741
 *   (`{ modified: true, etag: '' }`, nothing landed) or a thrown network error;
 *   any other call throws;
 * - after (`after`), writes only: it landed, then the answer was lost: a
 *   thrown error; for a conditional write also the SDK's retry getting 412
 *   (`{ modified: false }` for a write that landed) or #741 after landing;
 *   for an unconditional write also the SDK's retry landing it again, late;
 * - slow (`delay`): the call takes 0.5–8 s, or 20–60 s (the SDK's retries),
 *   and a write lands at some moment while its caller waits.
 */
import type { Store } from '@netlify/blobs'
import type { Actor, Fault, Scheduler } from './scheduler.ts'
import { type AtomicStore, type Metadata, aliasIds } from './sim-store.ts'

type Condition = { onlyIfNew?: boolean; onlyIfMatch?: string }
type WriteResult = { modified: boolean; etag?: string }

/** A thrown SDK error: what `fetch` or the SDK raises after its retries. */
export class SimulatedNetworkError extends Error {
  override name = 'SimulatedNetworkError'
}

/** `landed` is told of every write of this actor that landed (not of its orphans). */
export function simBlobsStore(
  sim: Scheduler,
  store: AtomicStore,
  actor: Actor,
  landed: (key: string) => void = () => {},
  note: (what: string) => void = () => {},
): Store {
  /** Conditional writes of this actor that landed but were answered with an error, 412 or #741: the version each made. */
  const unsure = new Map<string, string>()
  /**
   * How long the call takes, and when (within that) it reaches storage. A
   * fault comes after the SDK's retries (1–25 s); a write whose answer was
   * lost landed on the first attempt, so others run between its landing and
   * the adapter's read-back.
   */
  const timing = (fault: Fault) => {
    if (sim.auto) return { landIn: 0, answerIn: 0 }
    const slow = sim.rng.chance(sim.faults.delay) ? (sim.rng.chance(0.3) ? sim.rng.int(20_000, 60_000) : sim.rng.int(500, 8_000)) : 0
    const answerIn = fault === 'none' ? slow : Math.max(slow, sim.rng.int(1_000, 25_000))
    if (fault === 'error-before') return { landIn: answerIn, answerIn }
    return { landIn: fault === 'none' ? sim.rng.int(0, answerIn) : sim.rng.int(0, Math.min(answerIn, 300)), answerIn }
  }
  const roll = (): 'none' | 'before' | 'after' => {
    if (sim.auto) return 'none'
    const r = sim.rng.next()
    const { before, after } = sim.faults
    return r < before ? 'before' : r < before + after ? 'after' : 'none'
  }
  const label = (op: string, key: string) => () => `sdk.${op} ${aliasIds(key)}`
  const thrown = (what: string, landed: boolean) =>
    new SimulatedNetworkError(`simulated: ${what} ${landed ? 'landed but its answer was lost' : 'failed before it landed'}`)

  /** A call that only reads (or is unconditional): faults are a thrown error, before or after. */
  function plain<T>(op: string, key: string, write: boolean, effect: () => T, describe: (result: T) => string): Promise<T> {
    const kind = roll()
    const fault: Fault =
      kind === 'before' || (kind === 'after' && !write) ? 'error-before' : kind === 'after' ? sim.rng.pick(['error-after', 'landed-twice'] as const) : 'none'
    const land = write && fault !== 'error-before' ? () => describe(effect()) : null
    return sim.call<T>(actor, label(op, key), {
      ...timing(fault),
      fault,
      land,
      ...(fault === 'landed-twice' ? { beforeAnswer: () => void land!() } : {}),
      run: () => {
        if (fault === 'error-before') return { answer: { error: thrown(`${op} ${key}`, false) }, note: 'FAULT thrown before landing' }
        const result = effect()
        if (write) landed(key)
        if (fault === 'error-after') return { answer: { error: thrown(`${op} ${key}`, true) }, note: `${describe(result)} FAULT thrown after landing` }
        return { answer: { value: result }, note: describe(result) }
      },
    })
  }

  function conditionalSet(key: string, data: string, condition: Condition, metadata: Metadata): Promise<WriteResult> {
    const apply = (): WriteResult => {
      const outcome = condition.onlyIfNew
        ? store.create(key, data, metadata)
        : store.replace(key, data, condition.onlyIfMatch!, metadata)
      return outcome.ok ? { modified: true, etag: outcome.version } : { modified: false }
    }
    const kind = roll()
    const fault: Fault =
      kind === 'before'
        ? sim.rng.pick(['error-before', 'empty-etag'] as const)
        : kind === 'after'
          ? sim.rng.pick(['error-after', 'retried-412', 'empty-etag'] as const)
          : 'none'
    // #741 before landing: a 503 on every attempt. After landing: the first attempt landed, the retries got 503.
    const lands = kind !== 'before'
    const op = condition.onlyIfNew ? 'create' : 'replace'
    const said = (result: WriteResult) => (result.modified ? 'ok' : 'conflict')
    return sim.call<WriteResult>(actor, label(op, key), {
      ...timing(lands || fault === 'none' ? fault : 'error-before'),
      fault,
      land: lands ? () => said(apply()) : null,
      run: () => {
        const result = lands ? apply() : null
        if (result?.modified) landed(key)
        if (result?.modified && fault !== 'none') {
          unsure.set(key, result.etag!)
          note(`${key.split('/')[0]}/ write landed, its answer lost`)
        }
        const what = result ? said(result) : 'not landed'
        if (fault === 'error-before' || fault === 'error-after') return { answer: { error: thrown(`${op} ${key}`, lands) }, note: `${what} FAULT thrown` }
        if (fault === 'retried-412') return { answer: { value: { modified: false } }, note: `${what} FAULT the retry got 412` }
        if (fault === 'empty-etag') return { answer: { value: { modified: true, etag: '' } }, note: `${what} FAULT #741 modified:true etag:''` }
        return { answer: { value: result! }, note: what }
      },
    })
  }

  const simulated = {
    set(key: string, data: string, options: Condition & { metadata?: Metadata } = {}) {
      const { metadata = {}, ...condition } = options
      if (condition.onlyIfNew || condition.onlyIfMatch) return conditionalSet(key, data, condition, metadata)
      return plain('put', key, true, () => (store.put(key, data, metadata), { modified: true }), () => 'ok')
    },
    getMetadata(key: string) {
      return plain('getMetadata', key, false, () => {
        const found = store.metadata(key)
        // The adapter's read-back after an answer it cannot trust: someone else wrote in between.
        const made = unsure.get(key)
        unsure.delete(key)
        if (made !== undefined && found?.version !== made) note(`${key.split('/')[0]}/ write landed, its answer lost, overwritten before the read-back`)
        return found ? { etag: found.version, metadata: found.metadata } : null
      }, (found) => (found ? `found ${found.etag}` : 'absent'))
    },
    getWithMetadata(key: string) {
      return plain('getWithMetadata', key, false, () => {
        const found = store.metadata(key)
        return found ? { data: store.read(key)!.data, etag: found.version, metadata: found.metadata } : null
      }, (found) => (found ? 'found' : 'absent'))
    },
    list(options: { prefix?: string; directories?: boolean } = {}) {
      return plain('list', options.prefix ?? '', false, () => store.listWithVersions(options.prefix ?? '', options), (l) => `${l.blobs.length} keys`)
    },
    delete(key: string) {
      return plain('delete', key, true, () => store.delete(key), () => 'ok')
    },
  }
  return simulated as unknown as Store
}
