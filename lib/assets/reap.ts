/**
 * The reaper's side of generated assets: a due marker is judged against the
 * asset's own retention and its job's outcome.
 */
import type { Deps } from '../core/deps.ts'
import { ASSET_ID_PATTERN } from '../core/ids.ts'
import { CorruptRecordError } from '../core/records.ts'
import { isTerminal } from '../core/types.ts'
import { readSpec, readState, scheduleAssetCheck } from '../jobs/state.ts'
import { assetKeys } from '../storage/keys.ts'
import { type AssetRecord, AssetRecordSchema, deleteAsset, deleteStrayParts } from './record.ts'

export type AssetReaping = 'deleted' | 'kept' | 'rechecked' | 'gone'

/**
 * The reaper's judgment of an asset whose marker is due: deleted when its
 * retention is over, or when its job ended without completing with it
 * listed; checked again later while the job is live. Safe to repeat.
 * Throws `CorruptRecordError` for metadata it cannot parse (left as it is).
 */
export async function reapAsset(deps: Pick<Deps, 'store' | 'assets' | 'clock' | 'settings'>, assetId: string): Promise<AssetReaping> {
  if (!ASSET_ID_PATTERN.test(assetId)) return 'gone'
  const key = assetKeys.asset(assetId)
  const metadata = await deps.assets.metadata(key)
  if (!metadata) {
    // Never saved whole (the save died between its parts and its record), or already deleted.
    await deleteStrayParts(deps.assets, assetId)
    return 'gone'
  }
  const parsed = AssetRecordSchema.safeParse(metadata)
  // Another deploy's code may have written it: never delete what cannot be read; an operator decides.
  if (!parsed.success) throw new CorruptRecordError(key, { cause: parsed.error })
  const asset = parsed.data
  const now = deps.clock.now()
  if (asset.expiresAt > now) {
    const verdict = await jobVerdict(deps, asset)
    if (verdict === 'keep') return 'kept'
    if (verdict === 'live') {
      await scheduleAssetCheck(deps.store, now + deps.settings.lockTtlMs, assetId)
      return 'rechecked'
    }
  }
  await deleteAsset(deps.assets, asset)
  return 'deleted'
}

async function jobVerdict(deps: Pick<Deps, 'store'>, asset: AssetRecord): Promise<'keep' | 'live' | 'orphan'> {
  const stored = await readState(deps.store, asset.jobId)
  if (!stored) {
    if (await readSpec(deps.store, asset.jobId)) return 'live'
    // The job's record is past its own retention: it settled long ago, and a
    // job that did not complete scheduled its listed files then.
    return 'keep'
  }
  const { state } = stored
  if (!isTerminal(state.status)) return 'live'
  const listed = state.assets.some((listedAsset) => listedAsset.assetId === asset.assetId)
  return state.status === 'complete' && listed ? 'keep' : 'orphan'
}
