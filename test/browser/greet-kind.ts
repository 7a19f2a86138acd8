/**
 * A kind the demo page has never heard of, added to a copy of the project by
 * `addKind` (test/support/ticker-root.ts) the way the README says: one file in lib/kinds,
 * listed in lib/kinds/index.ts. Its form must come from `GET /api/kinds`.
 */
import { z } from 'zod'
import { defineJob } from '../../lib/kinds/define.ts'

export const greet = defineJob({
  kind: 'greet',
  title: 'Greet someone',
  description: 'Says hello, a few times.',
  input: z.strictObject({
    name: z.string().min(1).max(40),
    times: z.number().int().min(1).max(5).meta({ title: 'How many times' }),
    shout: z.boolean().optional(),
    style: z.enum(['plain', 'fancy']),
  }),
  example: { name: 'Ada', times: 2, style: 'plain' },
  async run({ input, progress }) {
    await progress('greeting', 50)
    const hello = `Hello, ${input.name}${input.style === 'fancy' ? '!' : '.'}`
    return { greeting: Array.from({ length: input.times }, () => (input.shout ? hello.toUpperCase() : hello)).join(' ') }
  },
})
