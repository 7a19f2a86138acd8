/**
 * `fn` over `items` with at most `limit` calls at once, results in order:
 * enough parallel storage calls to hide their latency, few enough not to
 * flood the store (or the function's sockets).
 */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const lane = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await fn(items[index]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane))
  return results
}

/** Storage calls one job's work makes at once (step reads, step deletes at retention). */
export const STORAGE_CONCURRENCY = 16
