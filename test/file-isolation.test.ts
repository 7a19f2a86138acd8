/**
 * The unit project reuses its workers from file to file; what one file changes
 * in the process must not reach the next (test/support/file-isolation.ts puts
 * it back with takeProcessState). Without it, a variable set by one file was
 * seen by the next one in the same worker.
 */
import { describe, expect, it, vi } from 'vitest'
import { jobKinds } from '../netlify/app.ts'
import { takeProcessState } from './support/process-state.ts'
import { slow } from './support/kinds.ts'
import { registerJobKinds } from '../netlify/app.ts'

describe('what a test file changes in its process', () => {
  it('is put back: environment variables set, changed and removed, test kinds, spies and fake timers', () => {
    const before = { ...process.env }
    const kindsBefore = [...jobKinds().keys()]
    const state = takeProcessState()
    const log = console.log
    process.env.FILE_ISOLATION_ADDED = 'leaked'
    process.env.PATH = 'changed'
    const removed = Object.keys(before).find((name) => name !== 'PATH')!
    delete process.env[removed]
    registerJobKinds([slow])
    vi.spyOn(console, 'log').mockImplementation(() => {})
    vi.useFakeTimers({ toFake: ['Date'] })
    expect([...jobKinds().keys()]).toContain('slow')

    state.putBack()

    expect({ ...process.env }).toEqual(before)
    expect([...jobKinds().keys()]).toEqual(kindsBefore)
    expect(console.log).toBe(log)
    expect(vi.isFakeTimers()).toBe(false)
  })
})
