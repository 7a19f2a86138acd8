/**
 * A built-in sample document for the demo, made procedurally (a seeded
 * generator, so the same size always gives the same text and a second submit
 * of it joins the running job).
 */

const SUBJECTS = [
  'The harbour master', 'The night crew', 'A retired engineer', 'The weather station', 'The ferry company',
  'The town council', 'A visiting surveyor', 'The lighthouse keeper', 'The fishing cooperative', 'The school on the hill',
  'The old signal tower', 'A young apprentice', 'The tide gauge', 'The rescue team', 'The county archive',
]
const VERBS = [
  'kept a careful record of', 'argued for years about', 'quietly rebuilt', 'measured every morning', 'wrote letters about',
  'depended on', 'repaired by hand', 'lost track of', 'mapped in detail', 'came to trust', 'warned the mainland about',
  'drew up new plans for',
]
const OBJECTS = [
  'the winter storms', 'the northern breakwater', 'the shifting sandbanks', 'the lamp and its clockwork', 'the spring tides',
  'the supply boats', 'the fog signals', 'the coastal path', 'the salt marsh', 'the radio mast', 'the harbour wall',
  'the timetable of the ferries', 'the rising sea level', 'the stone quay',
]
const CLAUSES = [
  'because nobody else remembered how it worked', 'long before the road reached the village',
  'even when the telegraph line was down', 'and every entry was copied twice', 'while the rest of the coast slept',
  'so that the next generation would not start from nothing', 'although the budget was cut every year',
  'after the great flood of the previous century', 'with nothing more than a notebook and a lantern',
  'whenever the barometer fell sharply', 'and the results surprised the engineers on the mainland',
]
const OPENERS = ['', '', '', 'In the end, ', 'For decades, ', 'Every autumn, ', 'By most accounts, ', 'Later, ', 'At first, ']
const CHAPTERS = ['The harbour', 'Storms and records', 'The lamp', 'Tides', 'The ferry years', 'Keeping watch', 'The archive', 'Rebuilding']

/** Mulberry32: a tiny seeded PRNG. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** About `words` words of plain prose in titled chapters of paragraphs. */
export function sampleText(words: number, seed = 7): string {
  const random = prng(seed)
  const pick = <T>(list: readonly T[]) => list[Math.floor(random() * list.length)]!
  const sentence = () => {
    const opener = pick(OPENERS)
    const subject = pick(SUBJECTS)
    const text = `${opener}${opener ? subject.charAt(0).toLowerCase() + subject.slice(1) : subject} ${pick(VERBS)} ${pick(OBJECTS)}`
    return `${text}${random() < 0.6 ? ` ${pick(CLAUSES)}` : ''}.`
  }
  const parts = ['A history of the northern harbour', '']
  let count = 6
  for (let chapter = 1; count < words; chapter++) {
    parts.push(`Chapter ${chapter}: ${CHAPTERS[(chapter - 1) % CHAPTERS.length]}`, '')
    for (let paragraph = 0; paragraph < 6 && count < words; paragraph++) {
      const sentences: string[] = []
      for (let i = 4 + Math.floor(random() * 4); i > 0; i--) {
        const next = sentence()
        count += next.split(' ').length
        sentences.push(next)
      }
      parts.push(sentences.join(' '), '')
    }
  }
  return parts.join('\n').trim()
}
