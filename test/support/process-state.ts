/**
 * What a test file may change in its worker's process, taken before the file
 * runs and put back after it (test/support/file-isolation.ts): environment
 * variables, the test kinds registered beside the production ones, spies and
 * fake timers.
 */
import { vi } from 'vitest'
import { registerJobKinds } from '../../netlify/app.ts'

export function takeProcessState() {
  const environment = { ...process.env }
  return {
    putBack() {
      for (const name of Object.keys(process.env)) if (!(name in environment)) delete process.env[name]
      Object.assign(process.env, environment)
      registerJobKinds([])
      vi.restoreAllMocks()
      vi.useRealTimers()
    },
  }
}
