/**
 * Set up before every file of the `unit` project, which runs its files one
 * after another in reused workers (`isolate: false` in vitest.config.ts: each
 * file loads the modules it shares with the files before it only once). What a
 * file changes in the process is put back when it ends (support/process-state.ts),
 * so no file sees what another left.
 */
import { afterAll } from 'vitest'
import { takeProcessState } from './process-state.ts'

const state = takeProcessState()
afterAll(() => state.putBack())
