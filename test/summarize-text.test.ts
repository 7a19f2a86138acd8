import { describe, expect, it } from 'vitest'
import {
  deriveTitle,
  extractKeyPoints,
  normalizeText,
  scoreSentences,
  splitSentences,
  splitWindows,
  summarizeWindow,
} from '../lib/kinds/summarize-text.ts'
import type { JobContext } from '../lib/kinds/define.ts'
import { summarize } from '../lib/kinds/summarize.ts'

// Deterministic pseudo-random generator so generated documents are reproducible.
function lcg(seed: number): () => number {
  let state = seed
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648
    return state / 2147483648
  }
}

const VOCAB = (
  'solar panel energy grid battery storage inverter roof sunlight electricity cost efficiency ' +
  'weather cloud winter summer installer permit meter utility the of and a to in is with for'
).split(' ')

function generateDoc(targetChars: number, seed = 7): string {
  const rnd = lcg(seed)
  const pick = (): string => VOCAB[Math.floor(rnd() * VOCAB.length)] ?? 'solar'
  const paragraphs: string[] = []
  let length = 0
  while (length < targetChars) {
    const sentences: string[] = []
    const count = 2 + Math.floor(rnd() * 5)
    for (let s = 0; s < count; s++) {
      const words = Array.from({ length: 6 + Math.floor(rnd() * 14) }, pick).join(' ')
      sentences.push(words.charAt(0).toUpperCase() + words.slice(1) + (rnd() < 0.1 ? '!' : '.'))
    }
    const paragraph = sentences.join(' ')
    paragraphs.push(paragraph)
    length += paragraph.length + 2
  }
  return paragraphs.join('\n\n')
}

const SOLAR_DOC = [
  'Yesterday a parrot sang beside the old lighthouse.',
  'Solar panels convert sunlight into electricity for the home.',
  'Many homeowners install solar panels on the roof.',
  'The weather was pleasant and nobody complained about lunch.',
  'Solar panels produce the most electricity in bright sunlight.',
  'A solar panel needs sunlight, and solar panels need a clean roof to make electricity.',
  'It was what it was, and that was all there was to it.',
].join(' ')

describe('splitSentences', () => {
  it('splits on ., ! and ?', () => {
    expect(splitSentences('Hello world. How are you? I am fine!')).toEqual([
      'Hello world.',
      'How are you?',
      'I am fine!',
    ])
  })

  it('does not split on common abbreviations or initials', () => {
    expect(
      splitSentences('Dr. Smith met Mr. Jones at 5 p.m. yesterday. They talked, e.g. about rain. J. K. Rowling wrote.'),
    ).toEqual(['Dr. Smith met Mr. Jones at 5 p.m. yesterday.', 'They talked, e.g. about rain.', 'J. K. Rowling wrote.'])
    // Unlisted abbreviations: a lowercase next word means the sentence goes on.
    expect(splitSentences('Acme Inc. was founded long ago. It makes tools.')).toEqual([
      'Acme Inc. was founded long ago.',
      'It makes tools.',
    ])
  })

  it('does not split on decimals', () => {
    expect(splitSentences('Pi is roughly 3.14 and e is 2.718. Both are irrational.')).toEqual([
      'Pi is roughly 3.14 and e is 2.718.',
      'Both are irrational.',
    ])
  })

  it('keeps a final sentence without trailing punctuation', () => {
    expect(splitSentences('First sentence. Second without an end')).toEqual([
      'First sentence.',
      'Second without an end',
    ])
  })

  it('splits on paragraph breaks and list lines but joins hard-wrapped prose', () => {
    const text = 'Heading\n\nThis sentence is\nwrapped across lines. Next one\r\nItems:\n- apples\n- pears'
    expect(splitSentences(text)).toEqual([
      'Heading',
      'This sentence is wrapped across lines.',
      'Next one',
      'Items:',
      '- apples',
      '- pears',
    ])
  })

  it('trims, collapses inner whitespace and drops empty or punctuation-only pieces', () => {
    expect(splitSentences('  \n\n  ...  \n   Hello    there.   \n\n !!! ')).toEqual(['Hello there.'])
    expect(splitSentences('')).toEqual([])
    expect(splitSentences(' \n\t ')).toEqual([])
  })
})

describe('splitWindows', () => {
  it('returns [] for empty or whitespace-only input', () => {
    expect(splitWindows('')).toEqual([])
    expect(splitWindows('  \n\n\t ')).toEqual([])
  })

  it('returns one normalized window for short text', () => {
    expect(splitWindows('  Hello\r\n\r\n\r\nworld  ')).toEqual(['Hello\n\nworld'])
    expect(normalizeText('a \r\n\r\n\r\n b\t c\nd')).toBe('a\n\nb c\nd')
  })

  it('covers the normalized text in order, without loss, within the size bound', () => {
    const text = generateDoc(30_000).replace(/\n\n/g, '\n \r\n  \n') + '   '
    const windows = splitWindows(text, 1_000)
    expect(windows.length).toBeGreaterThan(20)
    expect(windows.join('')).toBe(normalizeText(text))
    for (const w of windows) {
      expect(w.length).toBeLessThanOrEqual(1_000)
      expect(w.trim()).not.toBe('')
    }
  })

  it('never breaks inside a word when words fit, with or without punctuation', () => {
    const prose = generateDoc(20_000, 3).replace(/\n\n/g, ' ')
    for (const text of [prose, prose.replace(/[.!?]/g, '')]) {
      const windows = splitWindows(text, 301)
      expect(windows.length).toBeGreaterThan(50)
      for (let i = 1; i < windows.length; i++) {
        const boundary = (windows[i - 1] ?? '').slice(-1) + (windows[i] ?? '').charAt(0)
        expect(boundary).toMatch(/\s/)
      }
    }
  })

  it('prefers paragraph breaks, then sentence ends', () => {
    const paragraphs = Array.from({ length: 40 }, (_, i) => `Paragraph ${i} talks about solar power. `.repeat(8).trim())
    const byParagraph = splitWindows(paragraphs.join('\n\n'), 1_000)
    expect(byParagraph.length).toBeGreaterThan(5)
    for (const w of byParagraph.slice(0, -1)) expect(w.endsWith('\n\n')).toBe(true)

    const bySentence = splitWindows('The grid stores energy for later use. '.repeat(200), 500)
    for (const w of bySentence.slice(0, -1)) expect(w).toMatch(/\.\s+$/)
  })

  it('hard-cuts a single word that exceeds the window', () => {
    const text = 'x'.repeat(2_500)
    const windows = splitWindows(text, 1_000)
    expect(windows.map((w) => w.length)).toEqual([1_000, 1_000, 500])
    expect(windows.join('')).toBe(text)
  })
})

describe('scoreSentences', () => {
  it('ranks a sentence repeating the dominant terms above filler, even filler placed first', () => {
    const sentences = splitSentences(SOLAR_DOC)
    const scores = scoreSentences(sentences)
    expect(scores).toHaveLength(sentences.length)
    const dominant = sentences.indexOf('Solar panels convert sunlight into electricity for the home.')
    const filler = sentences.indexOf('Yesterday a parrot sang beside the old lighthouse.')
    expect(dominant).toBeGreaterThan(0)
    expect(filler).toBe(0)
    expect(scores[dominant]).toBeGreaterThan(2 * (scores[filler] ?? 0))
    const lunch = sentences.indexOf('The weather was pleasant and nobody complained about lunch.')
    expect(scores[dominant]).toBeGreaterThan(scores[lunch] ?? 0)
  })

  it('gives stop-word-only sentences zero and earlier sentences a small bonus', () => {
    const scores = scoreSentences([
      'Solar power keeps growing.',
      'It was what it was.',
      'Batteries store energy.',
      'Grid operators balance load.',
      'Inverters convert current.',
      'Meters record usage.',
      'Solar power keeps growing.',
    ])
    expect(scores[1]).toBe(0)
    expect(scores[0]).toBeGreaterThan(scores[6] ?? 0)
    expect((scores[0] ?? 0) / (scores[6] ?? 1)).toBeLessThan(1.5) // the bonus is small
  })

  it('normalizes by sentence length so padding does not win', () => {
    const sentences = [
      'Solar panels make electricity.',
      'Solar panels need sunlight.',
      'Solar electricity is cheap.',
      'Solar panels, according to a long and winding report written by several committees over many ' +
        'years in various distant cities, eventually make electricity.',
      'Solar panels make electricity.',
    ]
    const scores = scoreSentences(sentences)
    expect(scores[4]).toBeGreaterThan(scores[3] ?? 0)
  })

  it('is deterministic and handles empty input', () => {
    const sentences = splitSentences(SOLAR_DOC)
    expect(scoreSentences(sentences)).toEqual(scoreSentences([...sentences]))
    expect(scoreSentences([])).toEqual([])
  })
})

describe('summarizeWindow', () => {
  it('picks top sentences from the input and keeps their original order', () => {
    const sentences = splitSentences(SOLAR_DOC)
    const result = summarizeWindow(SOLAR_DOC, 3)
    expect(result.sentences).toHaveLength(3)
    const positions = result.sentences.map((s) => sentences.indexOf(s))
    for (const p of positions) expect(p).toBeGreaterThanOrEqual(0)
    expect([...positions].sort((a, b) => a - b)).toEqual(positions)
    expect(result.summary).toBe(result.sentences.join(' '))
    expect(result.sentences).toContain('Solar panels convert sunlight into electricity for the home.')
    expect(result.sentences).not.toContain('Yesterday a parrot sang beside the old lighthouse.')
    expect(result.sentences).not.toContain('It was what it was, and that was all there was to it.')
  })

  it('handles short, empty and zero-size requests', () => {
    expect(summarizeWindow('Only one sentence here.', 3)).toEqual({
      summary: 'Only one sentence here.',
      sentences: ['Only one sentence here.'],
    })
    expect(summarizeWindow('', 3)).toEqual({ summary: '', sentences: [] })
    expect(summarizeWindow(SOLAR_DOC, 0)).toEqual({ summary: '', sentences: [] })
  })
})

describe('extractKeyPoints', () => {
  it('returns distinct key sentences of at most 200 characters', () => {
    const longSentence =
      'Solar panels and solar batteries store solar electricity, ' +
      Array.from({ length: 40 }, (_, i) => `solar panel ${i}`).join(', ') +
      '.'
    const text = [
      'Solar panels convert sunlight into electricity.',
      'Solar panels convert sunlight into electricity!',
      'SOLAR PANELS CONVERT SUNLIGHT INTO ELECTRICITY.',
      'Solar panels convert the sunlight into electricity.',
      longSentence,
      'Batteries store solar electricity overnight.',
      'The installer checks the solar panels every winter.',
      'A parrot sang.',
    ].join(' ')
    const points = extractKeyPoints(text, 5)
    expect(points.length).toBeGreaterThan(1)
    expect(points.length).toBeLessThanOrEqual(5)
    const keys = points.map((p) => p.toLowerCase().replace(/[^a-z]+/g, ' ').replace(/\bthe\b/g, '').replace(/\s+/g, ' ').trim())
    expect(new Set(keys).size).toBe(points.length)
    for (const p of points) expect(p.length).toBeLessThanOrEqual(200)
    const truncated = points.find((p) => p.startsWith('Solar panels and solar batteries'))
    expect(truncated).toBeDefined()
    expect(truncated?.endsWith('…')).toBe(true)
  })

  it('respects count and handles empty input', () => {
    expect(extractKeyPoints(SOLAR_DOC, 2)).toHaveLength(2)
    expect(extractKeyPoints('')).toEqual([])
    expect(extractKeyPoints('   \n ')).toEqual([])
  })
})

describe('deriveTitle', () => {
  it('uses the first heading-like line', () => {
    expect(deriveTitle('# Quarterly Report ##\n\nRevenue grew. Costs fell.')).toBe('Quarterly Report')
    expect(deriveTitle('Intro text line.\n## **Solar Roadmap**\nMore text.')).toBe('Solar Roadmap')
    expect(deriveTitle('Solar Energy Overview\n\nSolar panels convert sunlight.')).toBe('Solar Energy Overview')
  })

  it('falls back to salient terms and stays within 80 characters', () => {
    const title = deriveTitle(SOLAR_DOC)
    expect(title.length).toBeGreaterThan(0)
    expect(title.length).toBeLessThanOrEqual(80)
    expect(title).toMatch(/Solar/)
    expect(deriveTitle(`# ${'Very long heading words '.repeat(20)}`).length).toBeLessThanOrEqual(80)
  })

  it('returns a placeholder for empty input', () => {
    expect(deriveTitle('')).toBe('Untitled')
    expect(deriveTitle(' \n ')).toBe('Untitled')
  })
})

describe('determinism', () => {
  it('gives identical results on repeated runs', () => {
    const doc = generateDoc(50_000, 11)
    const run = () => ({
      windows: splitWindows(doc, 5_000),
      summaries: splitWindows(doc, 5_000).map((w) => summarizeWindow(w)),
      keyPoints: extractKeyPoints(doc),
      title: deriveTitle(doc),
    })
    expect(run()).toEqual(run())
  })
})

describe('large input', () => {
  it('windows and summarizes a ~2 MB document', () => {
    const doc = generateDoc(2_000_000)
    expect(doc.length).toBeGreaterThanOrEqual(2_000_000)
    const windows = splitWindows(doc)
    expect(windows.length).toBeGreaterThanOrEqual(100)
    expect(windows.join('')).toBe(normalizeText(doc))
    for (const w of windows) {
      expect(w.length).toBeLessThanOrEqual(20_000)
      const { summary, sentences } = summarizeWindow(w)
      expect(summary.length).toBeGreaterThan(0)
      expect(sentences.length).toBeGreaterThan(0)
      expect(sentences.length).toBeLessThanOrEqual(3)
      for (const s of sentences) expect(w.includes(s)).toBe(true)
    }
    const points = extractKeyPoints(doc)
    expect(points).toHaveLength(5)
    for (const p of points) expect(p.length).toBeLessThanOrEqual(200)
    const title = deriveTitle(doc)
    expect(title.length).toBeGreaterThan(0)
    expect(title.length).toBeLessThanOrEqual(80)
  })
})

// Shapes that made the old splitter quadratic: at these sizes it ran for minutes,
// far past the test timeout; linear code takes milliseconds.
describe('hostile input', () => {
  it('splits a long run of dots followed by a letter', () => {
    const dots = '.'.repeat(100_000)
    expect(splitSentences(`Intro${dots}x tail. Next sentence here.`)).toEqual([`Intro${dots}x tail.`, 'Next sentence here.'])
    expect(splitSentences(`${'....x'.repeat(40_000)} End.`)).toEqual([`${'....x'.repeat(40_000)} End.`])
  })

  it('joins a long run of hard-wrapped lines', () => {
    // Lines that start in uppercase continue the block only because the previous one ends in ','.
    const lines = 'Word,\n'.repeat(100_000)
    expect(splitSentences(`${lines}End. Next one.`)).toEqual([`${'Word, '.repeat(100_000)}End.`, 'Next one.'])
  })

  it('finds a heading between long runs of emphasis and hashes', () => {
    const stars = '*'.repeat(1_500)
    expect(deriveTitle(`# ${stars}Solar Report${stars} ${'#'.repeat(1_000)}\n\nBody.`)).toBe('Solar Report')
  })
})

describe('summarize handler', () => {
  it('yields between windows, so a timer (heartbeat, cancel) runs even when its writes never wait', async () => {
    const controller = new AbortController()
    const windowsDone: number[] = []
    const ctx: JobContext<{ text: string }> = {
      jobId: 'job_test',
      account: 'acct',
      input: { text: generateDoc(400_000, 5) },
      attempt: 1,
      signal: controller.signal,
      progress: async () => {},
      step: async (_name, fn) => fn(),
      emit: async (_type, data) => {
        windowsDone.push((data as { index: number }).index)
      },
      saveAsset: () => Promise.reject(new Error('not used')),
      yield: () => new Promise<void>((resolve) => setImmediate(resolve)),
    }
    setTimeout(() => controller.abort(new Error('canceled by a timer')), 0)
    await expect(summarize.run(ctx)).rejects.toThrow('canceled by a timer')
    expect(windowsDone.length).toBeLessThan(20) // 400 KB makes 20+ windows: it stopped part way
  })
})
