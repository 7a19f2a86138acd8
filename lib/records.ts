/**
 * Reading stored records defensively. A record that is not JSON, or not the
 * shape this code expects (another deploy's code wrote it, or it was edited
 * by hand), is never guessed at: the reader throws `CorruptRecordError`
 * naming the key, and callers that walk many records (the reaper, the admin
 * snapshot) skip it, report it and leave it for an operator.
 */
import type { z } from 'zod'

export class CorruptRecordError extends Error {
  override name = 'CorruptRecordError'
  /** The storage key of the record that could not be read. */
  readonly key: string
  constructor(key: string, options?: { cause?: unknown }) {
    super(`${key} holds a record this code cannot read; left as it is for an operator`, options)
    this.key = key
  }
}

/** Parses a stored record with its schema, or throws `CorruptRecordError` for `key`. */
export function parseRecord<T>(key: string, data: string, schema: z.ZodType<T>): T {
  let raw: unknown
  try {
    raw = JSON.parse(data)
  } catch (error) {
    throw new CorruptRecordError(key, { cause: error })
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) throw new CorruptRecordError(key, { cause: parsed.error })
  return parsed.data
}
