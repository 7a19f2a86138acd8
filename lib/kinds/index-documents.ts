/**
 * `index`: a search index over a vault's documents, built batch by batch.
 * Each batch is a durable step (`ctx.step`), so a large vault is indexed
 * across as many invocations as it takes: a continuation, a retry or a
 * worker that died picks up at the first batch not stored yet. The merged
 * index is saved as `index.json`. One index job per vault at a time.
 */
import { z } from 'zod'
import { safePart } from '../storage/keys.ts'
import { defineJob } from './define.ts'

export const MAX_INDEX_DOCUMENTS = 10_000
export const MAX_DOCUMENT_CHARS = 100_000
/** Steps an index job uses at most: a smaller batchSize is raised to fit (well under MAX_STEPS_PER_JOB). */
export const MAX_INDEX_BATCHES = 500
/** Terms shorter than this, and these common words, are not indexed. */
const MIN_TERM_CHARS = 3
const STOP_WORDS = new Set(['the', 'and', 'for', 'are', 'but', 'not', 'you', 'all', 'any', 'can', 'her', 'was', 'one', 'our', 'out', 'has', 'his', 'how', 'its', 'who', 'did', 'yes', 'she', 'him', 'this', 'that', 'with', 'from', 'they', 'have', 'were', 'been', 'their', 'what', 'when', 'which', 'will', 'would', 'there', 'into', 'than', 'then'])

export const indexInput = z.strictObject({
  /** The vault the documents belong to: the job's lock. */
  vault: z.string().refine((vault) => {
    try {
      return safePart(vault) === vault
    } catch {
      return false
    }
  }, 'vault must be 1-128 characters of A-Z a-z 0-9 . _ - and not start with a symbol'),
  documents: z
    .array(z.strictObject({ id: z.string().min(1).max(128), text: z.string().max(MAX_DOCUMENT_CHARS) }))
    .min(1)
    .max(MAX_INDEX_DOCUMENTS)
    .refine((docs) => new Set(docs.map((doc) => doc.id)).size === docs.length, 'document ids must be unique'),
  /** Documents per step: smaller batches mean finer progress and less work repeated after a crash. */
  batchSize: z.number().int().min(1).max(1000).default(50).describe('Documents per step: smaller batches mean finer progress and less work repeated after a crash.'),
})

/** What one batch's step stores: each term with the ids of the batch's documents holding it. */
export type BatchPostings = { documents: number; terms: Record<string, string[]> }

export interface IndexResult {
  vault: string
  documents: number
  batches: number
  terms: number
  /** The terms found in most documents. */
  topTerms: { term: string; documents: number }[]
}

export function termsOf(text: string): Set<string> {
  const terms = new Set<string>()
  for (const word of text.toLowerCase().split(/[^\p{L}\p{N}]+/u)) {
    if (word.length >= MIN_TERM_CHARS && !STOP_WORDS.has(word)) terms.add(word)
  }
  return terms
}

export function indexBatch(documents: readonly { id: string; text: string }[]): BatchPostings {
  // A null prototype: a term like "constructor" is data, not a property of Object.
  const terms: Record<string, string[]> = Object.create(null)
  for (const doc of documents) for (const term of termsOf(doc.text)) (terms[term] ??= []).push(doc.id)
  return { documents: documents.length, terms }
}

export const indexDocuments = defineJob({
  kind: 'index',
  title: 'Index documents',
  description: "A search index over a vault's documents, one durable step per batch: a large vault runs across several invocations, and each batch is indexed once.",
  input: indexInput,
  example: {
    vault: 'notes',
    documents: [
      { id: 'a', text: 'Durable steps store their results.' },
      { id: 'b', text: 'A continuation resumes at the first step not stored.' },
    ],
    batchSize: 1,
  },
  cost: 2,
  lockedBy: ['input.vault'],
  lockKey: (input, account) => [account, 'index', input.vault],
  makesAssets: true,
  async run({ input, step, progress, signal, saveAsset, yield: yieldToTimers }): Promise<IndexResult> {
    const { documents } = input
    // At most MAX_INDEX_BATCHES steps: a job's stored steps are read again by every invocation.
    const batchSize = Math.max(input.batchSize, Math.ceil(documents.length / MAX_INDEX_BATCHES))
    const batches = Math.ceil(documents.length / batchSize)
    // Term → document ids, merged from the batches' stored postings (a null prototype, as in indexBatch).
    const index: Record<string, string[]> = Object.create(null)
    for (let b = 0; b < batches; b++) {
      await yieldToTimers()
      signal.throwIfAborted()
      const from = b * batchSize
      const batch = documents.slice(from, from + batchSize)
      // The name comes from the input alone, so every run of the job names its steps alike.
      const postings = await step(`batch-${b}`, async () => {
        await progress(`Indexing documents ${from + 1}-${from + batch.length} of ${documents.length}`, Math.round((b / batches) * 950) / 10)
        return indexBatch(batch)
      })
      for (const [term, ids] of Object.entries(postings.terms)) (index[term] ??= []).push(...ids)
    }
    signal.throwIfAborted()
    await progress('Saving the index', 97)
    const terms = Object.keys(index).sort()
    const sorted = Object.fromEntries(terms.map((term) => [term, index[term]!]))
    await saveAsset({ filename: 'index.json', contentType: 'application/json', data: new TextEncoder().encode(JSON.stringify({ vault: input.vault, documents: documents.length, terms: sorted })) })
    const topTerms = terms
      .map((term) => ({ term, documents: index[term]!.length }))
      .sort((a, b) => b.documents - a.documents || (a.term < b.term ? -1 : 1))
      .slice(0, 10)
    return { vault: input.vault, documents: documents.length, batches, terms: terms.length, topTerms }
  },
})
