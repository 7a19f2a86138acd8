/** Domain dependencies for tests: a clock the test moves, and a chosen store. */
import type { Clock } from '../../lib/core/clock.ts'
import { DEFAULT_SETTINGS, type Deps, type Settings, silentLogger } from '../../lib/core/deps.ts'
import { randomIds } from '../../lib/core/ids.ts'
import { type JobKind, kindRegistry } from '../../lib/kinds/define.ts'
import { productionKinds } from '../../lib/kinds/index.ts'
import type { BlobPort } from '../../lib/storage/port.ts'
import type { AssetPort } from '../../lib/storage/asset-port.ts'
import { memoryAssetPort } from '../../lib/storage/memory-assets.ts'

export interface ManualClock extends Clock {
  advance(ms: number): void
  set(ms: number): void
}

/** Time moves only when the test says; `sleep` advances it instead of waiting. */
export function manualClock(start = Date.UTC(2026, 10, 22, 12, 0, 0)): ManualClock {
  let now = start
  return {
    now: () => now,
    sleep: async (ms) => {
      now += ms
      await Promise.resolve()
    },
    advance: (ms) => {
      now += ms
    },
    set: (ms) => {
      now = ms
    },
  }
}

export function testDeps(
  store: BlobPort,
  options: {
    clock?: Clock
    kinds?: readonly JobKind<any, any>[]
    settings?: Partial<Settings>
    invokeWorker?: Deps['invokeWorker']
    /** Where generated files go; in memory unless the test cares. */
    assets?: AssetPort
    signingSecret?: string
  } = {},
): Deps {
  return {
    store,
    assets: options.assets ?? memoryAssetPort(),
    clock: options.clock ?? manualClock(),
    ids: randomIds,
    kinds: kindRegistry([...productionKinds, ...(options.kinds ?? [])]),
    settings: { ...DEFAULT_SETTINGS, ...options.settings },
    invokeWorker: options.invokeWorker ?? (async () => {}),
    log: silentLogger,
    signingSecret: options.signingSecret ?? 'test-signing-secret-of-at-least-32-characters',
  }
}
