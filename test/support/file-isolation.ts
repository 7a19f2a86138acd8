/**
 * Set up before every file of the `unit` project, which runs its files one
 * after another in reused workers (`isolate: false` in
 * vitest.config.ts: each file loads the modules it shares with the files before
 * it only once). What a file changes in the process is put back when it ends,
 * so no file sees what another left: environment variables, the test kinds
 * registered beside the production ones, spies and fake timers.
 */
import { afterAll, vi } from 'vitest'
import { registerJobKinds } from '../../netlify/app.ts'

const environment = { ...process.env }

afterAll(() => {
  for (const name of Object.keys(process.env)) if (!(name in environment)) delete process.env[name]
  Object.assign(process.env, environment)
  registerJobKinds([])
  vi.restoreAllMocks()
  vi.useRealTimers()
})
