/**
 * Extractive text summarization: pure, deterministic and dependency-free, so a
 * background job can summarize large documents (~2 MB) without network access.
 * Every step is linear (or n log n for ranking) in the size of the text.
 */

// Function words carry no topic signal, so they are ignored when counting terms.
const STOP_WORDS = new Set(
  ("a about above after again against all also am an and any are as at be because been before being " +
    "below between both but by can could did do does doing down during each either even ever every few for from " +
    "further get got had has have having he her here hers herself him himself his how however i if in into is it " +
    "its itself just let like me more most much my myself neither no nor not now of off on once one only or other " +
    "our ours ourselves out over own same she should since so some such than that the their theirs them themselves " +
    "then there these they this those though through thus to too under until up upon us very via was we well were " +
    "what when where whether which while who whom whose why will with within without would yet you your yours " +
    "yourself yourselves can't don't won't isn't aren't wasn't it's i'm that's there's etc may might must shall")
    .split(' '),
);

// Words written with a trailing period that almost never end a sentence.
const ABBREVIATIONS = new Set(
  'mr mrs ms dr prof sr jr st vs e.g i.e cf fig figs al approx dept ca vol pp p.m a.m u.s'.split(' '),
);

const TITLE_MAX = 80;
const KEY_POINT_MAX = 200;
const MIN_WINDOW = 16; // smaller windows could consist of whitespace alone
const MIN_NORMALIZED_LENGTH = 8; // stops one-word fragments from outranking real sentences
const POSITION_BONUS = 0.15; // at most +15% for the opening sentences
const NEAR_DUPLICATE = 0.8; // Jaccard similarity of term sets

const WORD = /[\p{L}\p{N}]+(?:['-][\p{L}\p{N}]+)*/gu;
const HAS_LETTER = /\p{L}/u;
// A run of sentence punctuation and closing quotes. It ends a sentence only when
// whitespace or the end follows (checked in code, not by a lookahead: a lookahead
// after `+` backtracks through the run from every start, quadratic on "....x"),
// which rules out decimals ("3.14"), URLs and inner dots of "e.g.".
const TERMINATOR = /[.!?]+["'”’)\]]*/g;
const WHITESPACE = /\s/;

/** Collapse whitespace runs to ' ', '\n' or '\n\n' (paragraph break) and trim. */
export function normalizeText(text: string): string {
  return text
    .replace(/\s+/g, (ws) => {
      const newlines = ws.match(/\r\n|\r|\n/g)?.length ?? 0;
      return newlines >= 2 ? '\n\n' : newlines === 1 ? '\n' : ' ';
    })
    .trim();
}

export function splitSentences(text: string): string[] {
  const out: string[] = [];
  // A block's lines are joined once, at the end: growing one string and asking it
  // `endsWith` flattens it on every line, which is quadratic on long wrapped blocks.
  let lines: string[] = [];
  const flush = (): void => {
    if (lines.length > 0) splitBlock(lines.join(' '), out);
    lines = [];
  };
  for (const raw of text.split(/\r\n|\r|\n/)) {
    const line = raw.replace(/\s+/g, ' ').trim();
    const previous = lines[lines.length - 1];
    if (!line) {
      flush(); // blank line = paragraph break
    } else if (previous !== undefined && (/^\p{Ll}/u.test(line) || previous.endsWith(','))) {
      lines.push(line); // hard-wrapped prose: the line continues the previous one
    } else {
      flush(); // headings, list items and new lines of prose stand alone
      lines.push(line);
    }
  }
  flush();
  return out;
}

function splitBlock(block: string, out: string[]): void {
  let start = 0;
  for (const m of block.matchAll(TERMINATOR)) {
    const end = m.index + m[0].length;
    if (end < block.length && !WHITESPACE.test(block.charAt(end))) continue;
    if (m[0].startsWith('.') && !m[0].startsWith('..') && !periodEndsSentence(block, m.index, end)) continue;
    pushSentence(out, block.slice(start, end));
    start = end;
  }
  pushSentence(out, block.slice(start));
}

// A lone period is not a boundary after an abbreviation or initial ("Mr.", "J."),
// or when the next word starts in lowercase ("approx. five").
function periodEndsSentence(block: string, dot: number, end: number): boolean {
  // Bounded look-around keeps this O(1) per period, even on a 2 MB single line.
  const word = (/[\p{L}.]*$/u.exec(block.slice(Math.max(0, dot - 12), dot))?.[0] ?? '').replace(/^\.+/, '');
  if (ABBREVIATIONS.has(word.toLowerCase()) || /^\p{Lu}$/u.test(word)) return false;
  const next = /\S/.exec(block.slice(end, end + 8))?.[0] ?? '';
  return !/\p{Ll}/u.test(next);
}

function pushSentence(out: string[], raw: string): void {
  const sentence = raw.trim();
  if (/[\p{L}\p{N}]/u.test(sentence)) out.push(sentence); // drop empties and lone punctuation
}

/**
 * Consecutive slices of the normalized text, each at most `windowChars` long.
 * Windows are not trimmed, so `windows.join('') === normalizeText(text)`.
 */
export function splitWindows(text: string, windowChars = 20_000): string[] {
  const size = Number.isNaN(windowChars) ? 20_000 : Math.max(MIN_WINDOW, Math.floor(windowChars));
  const doc = normalizeText(text);
  const windows: string[] = [];
  for (let pos = 0; pos < doc.length; ) {
    const cut = doc.length - pos <= size ? doc.length : findCut(doc, pos, size);
    windows.push(doc.slice(pos, cut));
    pos = cut;
  }
  return windows;
}

function findCut(doc: string, pos: number, size: number): number {
  const limit = pos + size;
  const win = doc.slice(pos, limit);
  const half = Math.floor(size / 2);
  // Prefer a paragraph break, then a sentence end, as long as the window stays at least half full.
  const paragraph = win.lastIndexOf('\n\n');
  if (paragraph >= half) return pos + paragraph + 2;
  let sentenceEnd = -1;
  for (const m of win.matchAll(/[.!?]["'”’)\]]*\s+|\n/g)) sentenceEnd = m.index + m[0].length;
  if (sentenceEnd >= half) return pos + sentenceEnd;
  // Then any word boundary (normalized whitespace is only ' ' or '\n').
  const next = doc[limit];
  if (next === ' ' || next === '\n') return limit;
  const firstContent = win.search(/\S/);
  for (let k = win.length - 1; k > firstContent; k--) {
    if (win[k] === ' ' || win[k] === '\n') return pos + k + 1;
  }
  // A single word longer than the window: hard cut, but never inside a surrogate pair.
  const code = doc.charCodeAt(limit - 1);
  return code >= 0xd800 && code <= 0xdbff ? limit - 1 : limit;
}

interface Tokens {
  terms: string[]; // stemmed content words
  surfaces: string[]; // the lowercase word each term came from
  wordCount: number; // all words, stop words included
}

function tokenize(text: string): Tokens {
  // String.match with /g is much faster than iterating matchAll on megabytes of text.
  const words = text.toLowerCase().replace(/’/g, "'").match(WORD) ?? [];
  const tokens: Tokens = { terms: [], surfaces: [], wordCount: words.length };
  for (const word of words) {
    if (word.length < 2 || STOP_WORDS.has(word)) continue;
    // Pure numbers are not topics; words starting with a letter skip the (slow) regex check.
    if (word.charCodeAt(0) <= 0x39 && !HAS_LETTER.test(word)) continue;
    // Crude plural folding so "panel" and "panels" count as one term.
    tokens.terms.push(word.length > 3 && word.endsWith('s') && !word.endsWith('ss') ? word.slice(0, -1) : word);
    tokens.surfaces.push(word);
  }
  return tokens;
}

/**
 * Term-frequency scoring: each sentence sums the document frequency of its
 * content terms (relative to the most frequent term), divided by its length so
 * long sentences are not favoured just for being long, with a small bonus for
 * the opening sentences, which tend to state the topic.
 */
export function scoreSentences(sentences: string[]): number[] {
  return scoreTokenized(sentences.map(tokenize));
}

function scoreTokenized(tokenized: Tokens[]): number[] {
  const freq = new Map<string, number>();
  let maxFreq = 1;
  for (const { terms } of tokenized) {
    for (const term of terms) {
      const n = (freq.get(term) ?? 0) + 1;
      freq.set(term, n);
      if (n > maxFreq) maxFreq = n;
    }
  }
  const early = Math.max(3, Math.ceil(tokenized.length * 0.1));
  return tokenized.map(({ terms, wordCount }, i) => {
    let sum = 0;
    for (const term of terms) sum += (freq.get(term) ?? 0) / maxFreq;
    const base = sum / Math.max(wordCount, MIN_NORMALIZED_LENGTH);
    return i < early ? base * (1 + POSITION_BONUS * (1 - i / early)) : base;
  });
}

export function summarizeWindow(text: string, maxSentences = 3): { summary: string; sentences: string[] } {
  const all = splitSentences(text);
  const sentences = pickDistinct(all, all.map(tokenize), maxSentences);
  return { summary: sentences.join(' '), sentences };
}

/** The top distinct sentences of the whole text, in document order, each ≤ 200 chars. */
export function extractKeyPoints(text: string, count = 5): string[] {
  // Sentence splitting and scoring are linear, so the whole text is scored at
  // once: global term frequencies rank better than per-window scores.
  const all = splitSentences(text);
  return pickDistinct(all, all.map(tokenize), count).map((s) => truncate(s, KEY_POINT_MAX));
}

// Highest-scoring sentences (ties: earlier first), skipping near-duplicates of
// ones already chosen, returned in their original order.
function pickDistinct(sentences: string[], tokenized: Tokens[], limit: number): string[] {
  const scores = scoreTokenized(tokenized); // tokenized once, for scores and for near-duplicates
  const want = Math.max(0, Math.floor(limit));
  const ranked = sentences.map((_, i) => i).sort((a, b) => (scores[b] ?? 0) - (scores[a] ?? 0) || a - b);
  const chosen: { index: number; key: string; terms: Set<string> }[] = [];
  for (const index of ranked) {
    if (chosen.length >= want) break;
    const sentence = sentences[index] ?? '';
    const key = sentence.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
    const terms = new Set(tokenized[index]?.terms);
    if (!chosen.some((c) => c.key === key || jaccard(c.terms, terms) >= NEAR_DUPLICATE)) {
      chosen.push({ index, key, terms });
    }
  }
  return chosen.sort((a, b) => a.index - b.index).map((c) => sentences[c.index] ?? '');
}

function jaccard(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 || b.size === 0) return 0;
  let shared = 0;
  for (const term of a) if (b.has(term)) shared++;
  return shared / (a.size + b.size - shared);
}

/** A title from the first heading-like line, else the document's most frequent terms. */
export function deriveTitle(text: string): string {
  const heading = findHeading(text);
  if (heading) return truncate(heading, TITLE_MAX);
  const { terms, surfaces } = tokenize(text);
  const stats = new Map<string, { count: number; first: number; surface: string }>();
  terms.forEach((term, i) => {
    const s = stats.get(term);
    if (s) s.count++;
    else stats.set(term, { count: 1, first: i, surface: surfaces[i] ?? term });
  });
  const top = [...stats.values()]
    .sort((a, b) => b.count - a.count || a.first - b.first)
    .slice(0, 4)
    .sort((a, b) => a.first - b.first); // reading order reads more naturally
  if (top.length === 0) return 'Untitled';
  return truncate(top.map((s) => s.surface.charAt(0).toUpperCase() + s.surface.slice(1)).join(' '), TITLE_MAX);
}

function findHeading(text: string): string | undefined {
  // Only the head of the document can hold its title; don't scan 2 MB for it.
  const lines = text.slice(0, 4000).split(/\r\n|\r|\n/).map((l) => l.trim()).filter(Boolean).slice(0, 10);
  for (const line of lines) {
    const hashes = /^#{1,6}\s+/.exec(line)?.[0];
    const markdown = hashes === undefined ? undefined : trimChars(line.slice(hashes.length), /[\s#]/);
    if (markdown && HAS_LETTER.test(markdown)) return stripEmphasis(markdown);
  }
  // A short first line without sentence punctuation ("Quarterly Report 2024").
  const first = stripEmphasis(lines[0] ?? '');
  const headingLike =
    first.length <= TITLE_MAX &&
    first.split(' ').length <= 12 &&
    HAS_LETTER.test(first) &&
    !/[.!?,;:]$/.test(first) && // sentences and list intros are not titles
    !/^[-*+•]\s/.test(first); // nor are bullet points
  return headingLike ? first : undefined;
}

function stripEmphasis(line: string): string {
  return trimChars(line, /[*_`]/, true).replace(/\s+/g, ' ').trim();
}

// Strips characters matching `char` from the end (and the start too, with `both`).
// A loop, because /x+$/ retries from every position of a long run of x.
function trimChars(text: string, char: RegExp, both = false): string {
  let start = 0;
  let end = text.length;
  while (end > 0 && char.test(text.charAt(end - 1))) end--;
  while (both && start < end && char.test(text.charAt(start))) start++;
  return text.slice(start, end);
}

// Cut at a word boundary when one is reasonably close, marking the cut with '…'.
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, max - 1);
  const space = cut.lastIndexOf(' ');
  if (space >= max * 0.6) cut = cut.slice(0, space);
  else if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1); // keep surrogate pairs whole
  return cut.trimEnd() + '…';
}
