/**
 * fast-check generators for hostile HTTP input: strings with lone surrogates,
 * bidi and zero-width characters, prototype keys, NaN-ish numbers; JSON with
 * raw literals JSON.stringify cannot produce (1e309, -0, duplicate keys);
 * odd Authorization headers, content types, query strings and path ids.
 */
import fc from 'fast-check'

/** Characters that have broken parsers, loggers and key builders before. */
export const WEIRD_CHARS = [
  '\u0000', '\u0001', '\u001f', '\u007f', '\u0085', '\u00a0', '\u00ad', // controls, NEL, NBSP, soft hyphen
  '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', // zero-width, BOM
  '\u202e', '\u202d', '\u2066', '\u2067', '\u200f', '\u061c', // RTL / bidi overrides
  '\u2028', '\u2029', '\ufffd', '\uffff', '\u0301', // line separators, replacement, combining
  '\ud800', '\udbff', '\udc00', '\udfff', // lone surrogates
  '\ud83d\ude00', '\u05d0', '\u0627', '\u0661', // emoji, Hebrew, Arabic, Arabic-Indic digit
  '/', '\\', '.', '..', '%', '%00', '%2F', '%2e', ':', '~', '#', '?', '&', '=', ';', ',', '"', "'", '`', '<', '>', '{', '}', '[', ']', '*', '$', '\n', '\r', '\t', ' ',
]

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c))

/** One "character" of hostile text: anything from the full Unicode range, weighted toward the troublemakers. */
export const weirdUnit: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...WEIRD_CHARS) },
  { weight: 2, arbitrary: loneSurrogate },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
)

export const weirdString = (maxLength = 40, minLength = 0) => fc.string({ unit: weirdUnit, minLength, maxLength })

export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'isPrototypeOf']

/** A huge string without generating it character by character. */
export const hugeString = (min: number, max: number) =>
  fc.tuple(fc.integer({ min, max }), fc.constantFrom('a', 'é', '\u202e', ' ', '\ud800', '😀', '\\', '"')).map(([n, c]) => c.repeat(Math.ceil(n / c.length)))

/**
 * A JSON literal JSON.stringify would never write. Values are placed as
 * `"\u0000RAW:<literal>"` strings and spliced in by `toJsonText`.
 */
export const RAW_PREFIX = '\u0000RAW:'
export const raw = (literal: string) => `${RAW_PREFIX}${literal}`
export const RAW_LITERALS = ['1e309', '-1e309', '-0', '0e0', '1E400', '-1e-400', '1e-7', '9007199254740993', '123456789012345678901234567890', '0.1e1', '1.0', 'NaN', 'Infinity', '-Infinity', 'undefined', '0x10', '01', '+1', '.5', '5.', '1_000', 'nul', 'True', "'single'", '"\\ud800"', '"\\udc00\\ud800"', '"\\u0000"', '"\\x41"', '"\t"']

export function toJsonText(value: unknown): string {
  const text = JSON.stringify(value) ?? 'null'
  // JSON.stringify escapes \u0000 as \\u0000, so the marker survives as text.
  return text.replace(/"\\u0000RAW:((?:[^"\\]|\\.)*)"/g, (_, literal: string) => JSON.parse(`"${literal}"`) as string)
}

/** Any value, weighted toward the wrong types and edge numbers. */
export const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, Number.MAX_SAFE_INTEGER, '', ' ', '\u200b', [], {}, [null], { '': '' }),
  fc.constantFrom(...RAW_LITERALS).map(raw),
  weirdString(30),
  fc.double(),
  fc.integer(),
  fc.jsonValue({ maxDepth: 3 }),
)

/** An object with an own `__proto__` (or other prototype-ish) key, which object literals cannot make. */
export const withKey = (object: Record<string, unknown>, key: string, value: unknown) => {
  const copy = { ...object }
  Object.defineProperty(copy, key, { value, enumerable: true, configurable: true, writable: true })
  return copy
}

/** Arbitrary JSON text: values, deep nesting, duplicate keys, raw literals, broken JSON. */
export const jsonText: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.jsonValue({ maxDepth: 5, stringUnit: weirdUnit }).map((v) => toJsonText(v)) },
  { weight: 2, arbitrary: fc.json({ maxDepth: 3 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 50, max: 100_000 }), fc.constantFrom('[', '{"a":', '{"__proto__":', '{"input":'), fc.boolean())
      .map(([depth, open, balanced]) => {
        const close = open === '[' ? ']' : '}'
        return open.repeat(depth) + (open === '[' ? '' : '1') + (balanced ? close.repeat(depth) : '')
      }),
  },
  { weight: 1, arbitrary: fc.constantFrom(...RAW_LITERALS, '', ' ', '\ufeff{}', '{}', '[]', 'null', '{"kind":"summarize","kind":"x"}', '{"a":1,}', '{"a":1}{"b":2}', '{"a":"\\u12"}', '\u0000') },
)

/** Raw bytes that are not valid UTF-8 (or are, barely). */
export const badUtf8: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
  fc.constantFrom(
    Buffer.from([0xff]),
    Buffer.from([0xc3, 0x28]),
    Buffer.from([0xed, 0xa0, 0x80]), // a UTF-16 surrogate encoded as UTF-8 (CESU-8)
    Buffer.from([0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF
    Buffer.from([0xc0, 0xaf]), // overlong '/'
    Buffer.concat([Buffer.from('{"kind":"summarize","input":{"text":"'), Buffer.from([0xe2, 0x82]), Buffer.from('"}}')]),
    Buffer.from('\ufeff{"kind":"summarize","input":{"text":"x"}}', 'utf16le'),
  ),
)

export const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/json;charset=latin1',
  'application/vnd.api+json',
  'application/merge-patch+json',
  'application/json, text/plain',
  'application/jsonx',
  'application/json-seq',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=----x',
  'text/plain',
  'text/json',
  'json',
  '',
  ' ',
  ';application/json',
  'application/json; charset=utf-16',
  '*/*',
  'application/\u00e9json',
]

/** `Content-Type`: undefined means the header is absent. */
export const contentType: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  { weight: 4, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: weirdString(40) },
)

export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'PROPFIND', 'PURGE']

export const QUERY_NAMES = ['after', 'limit', 'wait', 'as', 'status', 'sourceTaskId', 'cursor', 'AFTER', 'after[]', 'limit[0]', 'id', 'account', 'kind', ...PROTO_KEYS]
export const QUERY_VALUES = [
  '0', '1', '5', '20', '21', '100', '999', '1000', '1001', '999999999', '1000000000', '99999999999999999999', 'message',
  '-1', '-0', '+1', '1.5', '1e3', '1e309', '0x10', '0b1', '0o7', '00', '0001', ' 1', '1 ', '1,2', '1;2', 'NaN', 'Infinity', 'null', 'true', '[]', '{}',
  '', '%00', '%zz', '%', '%2', '%C0%AF', '%ED%A0%80', '%E2%80%AE1', '%D9%A1', '%EF%BC%91', 'queued', 'running', 'complete', 'failed', 'canceled', 'FAILED', 'failed ', '..%2F..%2F',
]
/**
 * Percent-encodes any JS string, lone surrogates included (as their WTF-8
 * bytes, which are not valid UTF-8), where encodeURIComponent would throw.
 */
export function percentEncode(text: string): string {
  let out = ''
  for (const char of text) {
    const code = char.codePointAt(0)!
    if (code >= 0xd800 && code <= 0xdfff) {
      out += [0xe0 | (code >> 12), 0x80 | ((code >> 6) & 0x3f), 0x80 | (code & 0x3f)].map((b) => `%${b.toString(16).toUpperCase()}`).join('')
    } else {
      out += encodeURIComponent(char)
    }
  }
  return out
}
const encodeQuery = percentEncode
/** A query value: edge numbers, encoded junk, and `known` values that mean something here (task ids). */
export const queryValue = (known: string[] = []): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...QUERY_VALUES) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 30 }).map(String) },
    { weight: known.length ? 2 : 0, arbitrary: fc.constantFrom('', ...known) },
    { weight: 2, arbitrary: weirdString(20).map(encodeQuery) },
    { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'abc019%&=+#;,/?.~-_!$\'()*:@[]'), maxLength: 20 }) },
  )
export const queryName: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...QUERY_NAMES) },
  { weight: 1, arbitrary: weirdString(12).map(encodeQuery) },
)
/** A query string (without '?'), with repeated params, empty pairs and encoded junk. */
export const queryString = (known: string[] = []): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant('') },
    {
      weight: 5,
      arbitrary: fc
        .array(
          fc.oneof(
            { weight: 8, arbitrary: fc.tuple(queryName, queryValue(known)).map(([k, v]) => `${k}=${v}`) },
            { weight: 1, arbitrary: fc.constantFrom('', '=', '&', 'after', 'limit=', '==', '&&&') },
          ),
          { maxLength: 6 },
        )
        .map((pairs) => pairs.join('&')),
    },
    { weight: 1, arbitrary: fc.integer({ min: 2000, max: 20_000 }).map((n) => `after=${'1'.repeat(n)}`) },
  )

/**
 * A path segment where an id goes, mostly not a usable one: the caller's real
 * ids, another account's, valid-looking ids that exist nowhere (for each id
 * prefix), near misses, traversal, junk, very long.
 */
export function pathId(real: { own: string[]; other: string[]; prefixes: string[] }): fc.Arbitrary<string> {
  const hex32 = fc.stringMatching(/^[0-9a-f]{32}$/)
  const ownReal = fc.constantFrom(...real.own)
  return fc.oneof(
    { weight: 3, arbitrary: ownReal },
    { weight: 3, arbitrary: fc.constantFrom(...real.other) },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...real.prefixes), hex32).map(([prefix, hex]) => `${prefix}_${Date.now().toString(36)}${hex}`) },
    {
      weight: 3,
      arbitrary: fc.tuple(ownReal, fc.integer({ min: 0, max: 9 })).map(([id, how]) => {
        const under = id.indexOf('_')
        return [id.toUpperCase(), `${id}0`, id.slice(0, -1), `${id}%00`, `${id}%0A`, `${id}%20`, `${id.slice(0, under).toUpperCase()}${id.slice(under)}`, id.replace('_', '%5F'), `${id}.json`, `%2F${id}`][how]!
      }),
    },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '..%2F..%2Fetc%2Fpasswd', '..%2f..%2fqueue', '%2e%2e%2f%2e%2e%2f', '..%5C..%5Cwindows', '..%252F', '%00', 'job%00', '%2F', '.%2E', '%2E.',
        'job_..%2Fqueue', 'asset_..%2F..%2Fapikey', '~', '%7E', '*', 'null', 'undefined', '__proto__', 'constructor', 'job_', 'asset_', 'job', '0', '-1', '%E2%80%AE', '%EF%BB%BF', '%ED%A0%80',
      ),
    },
    { weight: 2, arbitrary: weirdString(40, 1).map(percentEncode) },
    { weight: 1, arbitrary: fc.integer({ min: 200, max: 30_000 }).map((n) => 'a'.repeat(n)) },
  )
}

/** An `Authorization` header: mostly a good key (to get past auth), often not. `undefined` = absent. */
export function authorization(keys: { good: string[]; admin: string; tokens?: string[] }): fc.Arbitrary<string | string[] | undefined> {
  const [keyA] = keys.good as [string]
  const odd = fc.oneof(
    fc.constant(undefined),
    fc.constantFrom(
      '', 'Bearer', 'Bearer ', 'bearer', 'Bearer null', 'Bearer undefined', 'Basic dXNlcjpwYXNz', 'Token abc', 'Digest x', 'Bearer djk_', `Bearer ${'djk_'.padEnd(47, '=')}`,
      `bearer ${keyA}`, `BEARER ${keyA}`, `Bearer  ${keyA}`, `Bearer ${keyA} `, `Bearer\t${keyA}`, keyA, `Bearer ${keyA}, Bearer ${keys.good[1]}`, `Bearer ${keyA} ${keyA}`,
      `Bearer ${keyA.slice(0, -1)}`, `Bearer ${keyA}x`, `Bearer ${keyA.toUpperCase()}`, `Bearer ${keyA.toLowerCase()}`, `Bearer "${keyA}"`, `Bearer ${keys.admin}`,
      `Bearer ${keyA}\u00a0`, `Bearer ${keyA}\u200b`, `Bearer \u202e${keyA}`, `Bearer ${keyA.replace('djk_', 'djk-')}`, `Bearer djk_${'A'.repeat(43)}`, `Bearer djk_${'A'.repeat(44)}`,
    ),
    fc.constant<string[]>([`Bearer ${keyA}`, `Bearer ${keys.good[1]}`]),
    fc.constant<string[]>([`Bearer djk_${'A'.repeat(43)}`, `Bearer ${keyA}`]),
    weirdString(60).map((s) => `Bearer ${s}`),
    weirdString(60),
    fc.stringMatching(/^[A-Za-z0-9_-]{43}$/).map((s) => `Bearer djk_${s}`),
    fc.integer({ min: 1000, max: 20_000 }).map((n) => `Bearer ${'x'.repeat(n)}`),
  )
  return fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom(...keys.good).map((k) => `Bearer ${k}`) },
    { weight: 5, arbitrary: odd },
    { weight: keys.tokens?.length ? 5 : 0, arbitrary: tokenCredential(keys.tokens?.length ? keys.tokens : ['djt_']).map((t) => `Bearer ${t}`) },
  )
}

/**
 * A browser token as a caller may send it (in `Authorization` or `?token=`):
 * real ones of every scope (the caller's, another account's, expired,
 * revoked), one with a character changed or cut, the prefix on junk, huge.
 */
export function tokenCredential(tokens: string[]): fc.Arbitrary<string> {
  const swap = (text: string, at: number, to: string) => text.slice(0, at) + to + text.slice(at + 1)
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...tokens) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.constantFrom(...tokens), fc.nat(), fc.constantFrom('A', 'b', '_', '-', '.', '=', '%', '\u0000'))
        .map(([token, at, to]) => swap(token, 4 + (at % (token.length - 4)), to)),
    },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...tokens), fc.nat()).map(([token, n]) => token.slice(0, n % token.length)) },
    { weight: 1, arbitrary: fc.constantFrom('djt_', 'djt_.', 'djt_..', `djt_${'A'.repeat(20)}.${'B'.repeat(43)}`, `djt_e30.${'A'.repeat(43)}`, 'DJT_abc.def', 'djt_%00.x') },
    { weight: 1, arbitrary: weirdString(60).map((s) => `djt_${s}`) },
    { weight: 1, arbitrary: fc.integer({ min: 4000, max: 20_000 }).map((n) => `djt_${'a'.repeat(n)}.${'b'.repeat(43)}`) },
  )
}

export const idempotencyKey: fc.Arbitrary<string | undefined> = fc.oneof(
  { weight: 8, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.stringMatching(/^[\x21-\x7e]{1,40}$/) },
  { weight: 1, arbitrary: fc.integer({ min: 256, max: 20_000 }).map((n) => 'k'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\t', 'ä', 'key with spaces', 'k\u00ff', 'κλειδί', '\u202ekey', 'a,b', 'k'.repeat(255)) },
  { weight: 1, arbitrary: weirdString(30) },
)

/** Header values Node will put on the wire: UTF-8 bytes as latin1, and no CR/LF/NUL. */
export function wireHeader(value: string): string {
  const bytes = /^[\x00-\xff]*$/.test(value) ? value : Buffer.from(value, 'utf8').toString('latin1')
  return bytes.replace(/[^\t\x20-\x7e\x80-\xff]/g, '')
}

const SENTENCES = [
  'Durable jobs survive restarts.',
  'Locks stop double work.',
  'The reaper fails jobs whose worker died.',
  'Événements et reprises sans perte.',
  'שלום עולם \u202eעברית\u202c.',
  'Zero\u200bwidth\u200djoiners\u2060 everywhere.',
  'Lone \ud800 surrogate \udfff text.',
  '😀 emoji and e\u0301 combining marks.',
]

/** A valid `summarize` submission (small text, so a run is cheap). */
export const validSubmission = fc.record(
  {
    kind: fc.constant('summarize'),
    input: fc.record(
      {
        text: fc.array(fc.oneof(fc.constantFrom(...SENTENCES), weirdString(30, 1)), { minLength: 1, maxLength: 6 }).map((parts) => `${parts.join(' ')} ok.`),
        title: fc.oneof(fc.constantFrom('Report', 'تقرير', '\u202etitle'), weirdString(20)).filter((t) => t.trim().length > 0 && t.trim().length <= 200),
        windowChars: fc.integer({ min: 500, max: 100_000 }),
      },
      { requiredKeys: ['text'] },
    ),
    sourceTaskId: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,20}$/),
    clientJobId: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,20}$/),
  },
  { requiredKeys: ['kind', 'input'] },
)

type Body = Record<string, unknown> & { input?: unknown }
type Mutation = (body: Body) => unknown

const keyName = fc.oneof(fc.constantFrom(...PROTO_KEYS, 'kind', 'input', 'text', 'extra', ''), weirdString(12))
const inputOf = (body: Body) => (body.input && typeof body.input === 'object' ? (body.input as Record<string, unknown>) : {})

/** One way to break a submission. Some leave it valid (that is allowed, just rare). */
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc
    .oneof(
      wrongValue,
      fc.constantFrom(...PROTO_KEYS, 'SUMMARIZE', 'summarize ', ' summarize', 'render', 'summarize\u0000', 'sum\u200bmarize', 'summarize\u202e', 'x'.repeat(41), 'summarise', 'summarize/../x', '../summarize'),
    )
    .map((kind): Mutation => (b) => ({ ...b, kind })),
  wrongValue.map((input): Mutation => (b) => ({ ...b, input })),
  fc.constantFrom('kind', 'input').map((field): Mutation => (b) => {
    const { [field]: _dropped, ...rest } = b
    return rest
  }),
  fc
    .oneof(
      { weight: 6, arbitrary: wrongValue },
      { weight: 3, arbitrary: fc.constantFrom('', ' ', '\n\t ', '\u00a0', '\u3000\u2028', '\ufeff') },
      { weight: 1, arbitrary: hugeString(2_000_001, 2_000_050) },
    )
    .map((text): Mutation => (b) => ({ ...b, input: { ...inputOf(b), text } })),
  fc
    .oneof(wrongValue, fc.constantFrom(499, 100_001, 500.5, -0, 0, -500, '500', raw('1e309'), raw('-0'), raw('5e2'), raw('500.0000000000000001'), raw('NaN'), null))
    .map((windowChars): Mutation => (b) => ({ ...b, input: { ...inputOf(b), windowChars } })),
  fc.oneof(wrongValue, fc.constantFrom('', '   ', 'x'.repeat(201))).map((title): Mutation => (b) => ({ ...b, input: { ...inputOf(b), title } })),
  fc.tuple(keyName, wrongValue).map(([key, value]): Mutation => (b) => ({ ...b, input: withKey(inputOf(b), key, value) })),
  fc.tuple(keyName, wrongValue).map(([key, value]): Mutation => (b) => withKey(b, key, value)),
  fc
    .tuple(
      fc.constantFrom('sourceTaskId', 'clientJobId'),
      fc.oneof(wrongValue, fc.constantFrom('', '../../etc', '.hidden', '-x', 'x'.repeat(129), 'a b', 'a/b', 'ä', 'a\u200b', '\u202eabc', 'a%00')),
    )
    .map(([field, value]): Mutation => (b) => ({ ...b, [field]: value })),
  fc.constant<Mutation>((b) => [b]),
  fc.constant<Mutation>((b) => JSON.stringify(b)),
)

/** JSON text of a submission with 1-3 mutations (about 1 in 10 is left untouched). */
export const submissionText: fc.Arbitrary<string> = fc
  .tuple(
    validSubmission,
    fc.oneof({ weight: 1, arbitrary: fc.constant<Mutation[]>([]) }, { weight: 9, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) }),
  )
  .map(([body, mutations]) => toJsonText(mutations.reduce<unknown>((acc, m) => (acc && typeof acc === 'object' && !Array.isArray(acc) ? m(acc as Body) : acc), body)))

/** A request body: submission-shaped, arbitrary JSON, broken bytes, or (rarely) over the size cap. */
export function requestBody(options: { submissions: boolean; maxBytes: number }): fc.Arbitrary<string | Buffer | undefined> {
  return fc.oneof(
    { weight: options.submissions ? 24 : 2, arbitrary: submissionText },
    { weight: 10, arbitrary: jsonText },
    { weight: 2, arbitrary: badUtf8 },
    { weight: 2, arbitrary: fc.constant(undefined) },
    {
      weight: 1, // over the cap: expensive, so rare
      arbitrary: fc.integer({ min: 1, max: 1024 }).map((extra) => `{"kind":"summarize","input":{"text":"${'a'.repeat(options.maxBytes + extra - 40)}"}}`),
    },
  )
}

/** `Range` values: single, suffix, open, several, reversed, huge, other units, junk. */
export const rangeHeader: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.option(fc.nat({ max: 20_000 }), { nil: undefined }), fc.option(fc.nat({ max: 20_000 }), { nil: undefined }))
      .map(([a, b]) => `bytes=${a ?? ''}-${b ?? ''}`),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      'bytes=0-0', 'bytes=-0', 'bytes=0-', 'bytes=-1', 'bytes=0-1,3-4', 'bytes=5-2', 'bytes=', 'bytes=-', 'bytes=a-b', 'bytes=1-2-3',
      'bytes=99999999999999999999-', 'bytes=-99999999999999999999', `bytes=0-${'9'.repeat(400)}`, 'items=0-1', 'BYTES=0-1', 'bytes =0-1',
      'bytes=0-1, ,', 'bytes=1e3-2e3', 'bytes=0x10-0x20', 'bytes=+1-2', 'bytes=-1-2', 'bytes=0-16777216', 'bytes=16777216-',
    ),
  },
  { weight: 1, arbitrary: weirdString(30).map((s) => `bytes=${s}`) },
)

/** `If-Range`: a strong or weak ETag (`etags` known to the caller), another one, a date, junk. */
export const ifRangeHeader = (etags: string[]): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: etags.length ? 2 : 0, arbitrary: fc.constantFrom('"x"', ...etags) },
    { weight: 1, arbitrary: fc.constantFrom('"0"', 'W/"0"', 'Tue, 01 Dec 2026 00:00:00 GMT', '*', '') },
    { weight: 1, arbitrary: weirdString(20) },
  )

/**
 * The query of a signed asset link: a true one (from `links`), one altered
 * (expiry moved, signature changed, cut, padded, duplicated), or made up.
 */
export const assetLinkQuery = (links: string[]): fc.Arbitrary<string> => {
  const sig = fc.stringMatching(/^[A-Za-z0-9_-]{43}$/)
  const exp = fc.oneof(fc.constantFrom('0', '1', '99999999999', '999999999999', '-1', '1e10', '', '4102444800'), fc.nat().map(String))
  return fc.oneof(
    { weight: links.length ? 3 : 0, arbitrary: fc.constantFrom('exp=0', ...links) },
    {
      weight: links.length ? 3 : 0,
      arbitrary: fc.tuple(fc.constantFrom('exp=0', ...links), fc.nat(), fc.constantFrom('flip', 'cut', 'pad', 'exp+', 'dup', 'swap')).map(([link, at, how]) => {
        const params = new URLSearchParams(link)
        const s = params.get('sig') ?? ''
        const e = Number(params.get('exp') ?? 0)
        if (how === 'flip') return `exp=${e}&sig=${s.slice(0, at % 43)}${s[at % 43] === 'A' ? 'B' : 'A'}${s.slice((at % 43) + 1)}`
        if (how === 'cut') return `exp=${e}&sig=${s.slice(0, at % 43)}`
        if (how === 'pad') return `exp=${e}&sig=${s}=`
        if (how === 'exp+') return `exp=${e + 1 + (at % 100_000)}&sig=${s}`
        if (how === 'dup') return `${link}&exp=${e + 1}&sig=${s}`
        return `sig=${s}&exp=${e}`
      }),
    },
    { weight: 2, arbitrary: fc.tuple(exp, sig).map(([e, s]) => `exp=${e}&sig=${s}`) },
    { weight: 1, arbitrary: fc.tuple(exp, weirdString(50)).map(([e, s]) => `exp=${e}&sig=${percentEncode(s)}`) },
  )
}
