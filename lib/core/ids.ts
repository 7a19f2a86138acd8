import { randomBytes } from 'node:crypto'

/** Produces unguessable ids; a parameter so tests can make them predictable. */
export type IdSource = (prefix: string) => string

/**
 * `prefix_` + creation time (base36, so ids sort by age) + 128 random bits
 * in hex. The random part is what makes an id impossible to guess.
 */
export const randomIds: IdSource = (prefix) => `${prefix}_${Date.now().toString(36)}${randomBytes(16).toString('hex')}`

export const randomToken = (bytes = 16) => randomBytes(bytes).toString('base64url')

/** Shape of job ids: checked before any storage read, so junk never reaches a key. */
export const JOB_ID_PATTERN = /^job_[0-9a-z]{8,11}[0-9a-f]{32}$/
/** Shape of asset ids (made the same way, with the prefix `asset`). */
export const ASSET_ID_PATTERN = /^asset_[0-9a-z]{8,11}[0-9a-f]{32}$/
