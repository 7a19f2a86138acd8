/**
 * A store that runs a hook before every operation: to charge it time (a
 * manual clock moved per operation, or a real delay in the bench), count it,
 * or fail it by key.
 */
import type { BlobPort } from '../../lib/storage/port.ts'

export type StoreOp = keyof BlobPort

export function hookedStore(inner: BlobPort, before: (op: StoreOp, key: string) => void | Promise<void>): BlobPort {
  return {
    read: async (key) => (await before('read', key), inner.read(key)),
    create: async (key, data) => (await before('create', key), inner.create(key, data)),
    replace: async (key, data, version) => (await before('replace', key), inner.replace(key, data, version)),
    put: async (key, data) => (await before('put', key), inner.put(key, data)),
    delete: async (key) => (await before('delete', key), inner.delete(key)),
    list: async (prefix, options) => (await before('list', prefix), inner.list(prefix, options)),
  }
}

/**
 * A store whose every call goes through `around(op, key, call)`, which decides
 * what happens: let it through, fail it, answer for it, or run something else
 * first (another writer racing in before a read-back).
 */
export function interceptedStore(
  store: BlobPort,
  around: (op: StoreOp, key: string, call: () => Promise<unknown>) => Promise<unknown>,
): BlobPort {
  const wrap =
    <K extends StoreOp>(op: K) =>
    (...args: Parameters<BlobPort[K]>) =>
      around(op, args[0] as string, () => (store[op] as (...a: unknown[]) => Promise<unknown>)(...args))
  return {
    read: wrap('read') as BlobPort['read'],
    create: wrap('create') as BlobPort['create'],
    replace: wrap('replace') as BlobPort['replace'],
    put: wrap('put') as BlobPort['put'],
    delete: wrap('delete') as BlobPort['delete'],
    list: wrap('list') as BlobPort['list'],
  }
}
