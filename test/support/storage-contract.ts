/**
 * The storage port's contract: what every implementation (the Blobs adapter,
 * the in-memory store, the simulation's store) must do. Each suite calls it
 * with a factory for a fresh, empty store.
 */
import { describe, expect, it } from 'vitest'
import type { BlobPort } from '../../lib/storage/port.ts'

export function storagePortContract(name: string, make: () => BlobPort) {
  describe(`storage port contract: ${name}`, () => {
    it('reads what create wrote, with a version; absent keys read as null', async () => {
      const store = make()
      expect(await store.read('a/b')).toBeNull()
      const created = await store.create('a/b', 'one')
      expect(created.ok).toBe(true)
      const read = await store.read('a/b')
      expect(read?.data).toBe('one')
      expect(read?.version).toBeTruthy()
      if (created.ok) expect(read?.version).toBe(created.version)
    })

    it('create refuses an existing key and leaves it unchanged', async () => {
      const store = make()
      await store.create('k', 'first')
      expect(await store.create('k', 'second')).toEqual({ ok: false })
      expect((await store.read('k'))?.data).toBe('first')
    })

    it('replace succeeds only on the version read, and gives a new version', async () => {
      const store = make()
      await store.create('k', 'v1')
      const v1 = (await store.read('k'))!.version
      const replaced = await store.replace('k', 'v2', v1)
      expect(replaced.ok).toBe(true)
      if (replaced.ok) expect(replaced.version).not.toBe(v1)
      expect(await store.replace('k', 'v3', v1)).toEqual({ ok: false })
      expect((await store.read('k'))?.data).toBe('v2')
    })

    it('replace of a missing key is a conflict, and an empty version is refused', async () => {
      const store = make()
      expect(await store.replace('missing', 'x', '"nope"')).toEqual({ ok: false })
      expect(await store.read('missing')).toBeNull()
      await store.create('k', 'v1')
      await expect(store.replace('k', 'x', '')).rejects.toThrow(/unconditional/)
      expect((await store.read('k'))?.data).toBe('v1')
    })

    it('put overwrites; delete removes and is idempotent', async () => {
      const store = make()
      await store.put('k', 'a')
      await store.put('k', 'b')
      expect((await store.read('k'))?.data).toBe('b')
      await store.delete('k')
      await store.delete('k')
      expect(await store.read('k')).toBeNull()
    })

    it('lists keys by prefix, and folders one level down with directories', async () => {
      const store = make()
      await store.put('x/1/a', '')
      await store.put('x/1/b', '')
      await store.put('x/2/a', '')
      await store.put('x/top', '')
      await store.put('y/1', '')
      const all = await store.list('x/')
      expect(all.keys.sort()).toEqual(['x/1/a', 'x/1/b', 'x/2/a', 'x/top'])
      const dirs = await store.list('x/', { directories: true })
      expect(dirs.keys).toEqual(['x/top'])
      expect(dirs.directories.sort()).toEqual(['x/1', 'x/2'])
    })
  })
}
