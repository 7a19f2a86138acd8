/**
 * The kinds this deploy runs, as they describe themselves (`GET /api/kinds`):
 * name, title, description, cost, lock, whether they save files, and the
 * JSON Schema of their input, generated from the same zod schema submit
 * validates with.
 */
import { z } from 'zod'
import type { JobKind, KindRegistry } from './define.ts'
import { resolveRetryPolicy } from './retry.ts'

/** A JSON Schema (2020-12) object. */
const JsonSchemaObject = z.record(z.string(), z.unknown())

export const KindViewSchema = z.strictObject({
  kind: z.string(),
  title: z.string(),
  description: z.string().nullable(),
  /** Credits one job costs (charged once per client job id). */
  cost: z.number().int().nonnegative(),
  /** Null: no lock, jobs of this kind run side by side. Else one live job per resource, named by `by`. */
  lock: z.strictObject({ by: z.array(z.string()) }).nullable(),
  makesAssets: z.boolean(),
  /** Attempts a job may have, and the backoff between them (full jitter); `maxAttempts` 1: no retries. */
  retry: z.strictObject({ maxAttempts: z.number().int().positive(), baseMs: z.number().int().positive(), capMs: z.number().int().positive() }),
  /** JSON Schema (2020-12) of `input` in `POST /api/jobs`. */
  input: JsonSchemaObject,
  example: z.record(z.string(), z.unknown()).nullable(),
})
export type KindView = z.infer<typeof KindViewSchema>

export const KindCatalogSchema = z.strictObject({ kinds: z.array(KindViewSchema) })

/** The JSON Schema of a kind's input as a client sends it (before defaults and transforms). */
export function inputJsonSchema(kind: JobKind): Record<string, unknown> {
  const { $schema: _, ...schema } = z.toJSONSchema(kind.input, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
  return schema
}

export function kindView(kind: JobKind): KindView {
  return {
    kind: kind.kind,
    title: kind.title ?? kind.kind,
    description: kind.description ?? null,
    cost: kind.cost ?? 0,
    lock: kind.lockKey ? { by: kind.lockedBy ?? [] } : null,
    makesAssets: kind.makesAssets ?? false,
    retry: resolveRetryPolicy(kind.retry),
    input: inputJsonSchema(kind),
    example: (kind.example as Record<string, unknown> | undefined) ?? null,
  }
}

/** Every registered kind, in the order they were registered. */
export function kindCatalog(kinds: KindRegistry): z.infer<typeof KindCatalogSchema> {
  return { kinds: [...kinds.values()].map(kindView) }
}
