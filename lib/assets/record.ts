/**
 * An asset's record (the metadata of its blob in the `generated` store),
 * where its bytes and index blobs live, and how it is deleted. The lowest
 * layer of assets: kinds and views import these types without the rest.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { ASSET_ID_PATTERN } from '../core/ids.ts'
import type { AssetPort } from '../storage/asset-port.ts'
import { assetKeys, safePart } from '../storage/keys.ts'
import { laterPartKeys } from './parts.ts'

/** 80 GB in 8 MiB parts: far past any file a job may save (500 MB by default). */
const MAX_PARTS = 10_000

/** What an asset's blob carries as metadata in the `generated` store; parsed on every read. */
export const AssetRecordSchema = z.object({
  assetId: z.string().regex(ASSET_ID_PATTERN),
  account: z.string(),
  jobId: z.string(),
  sourceTaskId: z.string().nullable(),
  filename: z.string(),
  contentType: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.number(),
  /** Fixed when saved, so a later change of ASSET_RETENTION_HOURS cannot strand a file. */
  expiresAt: z.number(),
  /** Set when the file is stored in parts of this size (see parts.ts); absent: one blob. */
  partBytes: z.number().int().positive().optional(),
})
  // A record naming millions of parts is not one this code wrote: deleting or serving it would never end.
  .refine((record) => record.partBytes === undefined || record.bytes / record.partBytes <= MAX_PARTS, { message: 'too many parts' })
export type AssetRecord = z.infer<typeof AssetRecordSchema>

/** What a handler passes to `ctx.saveAsset`. */
export interface AssetFile {
  filename: string
  contentType: string
  data: Uint8Array
}

export interface AssetOwner {
  jobId: string
  account: string
  sourceTaskId: string | null
}

/** The record of a stored asset; `null` when absent or unreadable as one. */
export async function readAssetRecord(assets: AssetPort, assetId: string): Promise<AssetRecord | null> {
  const metadata = await assets.metadata(assetKeys.asset(assetId))
  if (!metadata) return null
  const parsed = AssetRecordSchema.safeParse(metadata)
  return parsed.success && parsed.data.assetId === assetId ? parsed.data : null
}

/** Deletes an asset: index blobs and later parts first, so while the record exists it still says where those are. */
export async function deleteAsset(assets: AssetPort, asset: AssetRecord) {
  await Promise.all(indexKeys(asset).map((key) => assets.delete(key)))
  await Promise.all(laterPartKeys(asset).map((key) => assets.delete(key)))
  await assets.delete(assetKeys.asset(asset.assetId))
}

/** Parts left by a save that died before writing the record (one narrow list). */
export async function deleteStrayParts(assets: AssetPort, assetId: string) {
  await Promise.all((await assets.list(assetKeys.partPrefix(assetId))).map((key) => assets.delete(key)))
}

export const taskHash = (sourceTaskId: string) => createHash('sha256').update(sourceTaskId).digest('hex').slice(0, 32)

export function indexKeys(asset: AssetRecord): string[] {
  const account = safePart(asset.account)
  return [
    assetKeys.byJob(account, asset.jobId, asset.assetId),
    ...(asset.sourceTaskId === null ? [] : [assetKeys.byTask(account, taskHash(asset.sourceTaskId), asset.assetId)]),
  ]
}
