import { describe, expect, it } from 'vitest'
import { JobFailure } from '../lib/core/errors.ts'
import { GENERIC_FAILURE, scrub, splitError } from '../lib/core/sanitize.ts'

const leaks = [
  'connect ECONNREFUSED 10.0.3.7:5432',
  'request to https://api.internal.example.com/v1/x?key=abc failed',
  'ENOENT: no such file or directory, open /var/task/lib/secret.json',
  'db at postgres.internal.example.com:5432 refused',
  'auth failed with token sk_live_abcdefghijklmnopqrstuvwxyz123456',
  'Authorization: Bearer djk_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ',
  'C:\\Users\\build\\app\\index.js exploded',
]

describe('sanitizer', () => {
  it('any ordinary error becomes the generic public error, with full detail kept internal', () => {
    const error = new Error('connect ECONNREFUSED 10.0.3.7:5432', { cause: new Error('pg pool exhausted') })
    const split = splitError(error)
    expect(split.error).toEqual(GENERIC_FAILURE)
    expect(split.errorInternal).toContain('10.0.3.7:5432')
    expect(split.errorInternal).toContain('pg pool exhausted')
    expect(split.errorInternal).toMatch(/at .*sanitize\.test\.ts/) // the stack, for operators
  })

  it('a JobFailure keeps its code and message, scrubbed', () => {
    const split = splitError(new JobFailure('bad_document', 'Could not read /var/data/in.txt from db.internal:5432'))
    expect(split.error.code).toBe('bad_document')
    expect(split.error.message).not.toMatch(/var\/data|db\.internal|5432/)
    expect(split.errorInternal).toContain('/var/data/in.txt')
  })

  it.each(leaks)('scrubs %s', (text) => {
    const out = scrub(text)
    for (const secret of ['10.0.3.7', 'internal.example.com', '/var/task', 'sk_live', 'djk_', 'C:\\Users', 'api.internal']) {
      expect(out).not.toContain(secret)
    }
  })

  it('drops stack frames and caps length', () => {
    const out = scrub(`Bad thing\n    at foo (file.js:1:2)\n    at bar (file.js:3:4)${' word'.repeat(200)}`)
    expect(out).not.toContain(' at foo')
    expect(out.length).toBeLessThanOrEqual(300)
  })

  it('a bad code falls back to job_failed; non-errors are described internally', () => {
    expect(splitError(new JobFailure('Not A Code!', 'x')).error.code).toBe('job_failed')
    expect(splitError({ weird: true }).errorInternal).toContain('weird')
    expect(splitError('plain string').error).toEqual(GENERIC_FAILURE)
  })
})
