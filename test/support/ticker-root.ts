/**
 * Test kinds in a throwaway project root (test/e2e/support.ts `makeProjectRoot`),
 * so `netlify dev` there runs them beside the production kinds; the
 * repository's own kinds list is untouched:
 * - `listTickerKind` lists kinds of support/kinds.ts (`ticker` by default);
 * - `addKind` adds `greet` (test/browser/greet-kind.ts) the way the README
 *   says: its file in lib/kinds, listed in lib/kinds/index.ts; public/ is not touched.
 * Each lists its kinds after those listed so far, so both may be used on one root.
 */
import { cp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { REPO } from '../e2e/support.ts'

async function appendKinds(root: string, kinds: readonly string[], importLine: string) {
  const index = join(root, 'lib', 'kinds', 'index.ts')
  const source = await readFile(index, 'utf8')
  const listed = source.replace(/\[summarize, render([^\]]*)\]/, `[summarize, render$1, ${kinds.join(', ')}]`)
  if (listed === source) throw new Error('lib/kinds/index.ts no longer lists [summarize, render]: update test/support/ticker-root.ts')
  await writeFile(index, `${importLine}\n${listed}`)
}

export async function listTickerKind(root: string, kinds: readonly string[] = ['ticker']) {
  await cp(join(REPO, 'test', 'support', 'kinds.ts'), join(root, 'test', 'support', 'kinds.ts'))
  await appendKinds(root, kinds, `import { ${kinds.join(', ')} } from '../../test/support/kinds.ts'`)
}

export async function addKind(root: string) {
  const source = await readFile(join(REPO, 'test', 'browser', 'greet-kind.ts'), 'utf8')
  await writeFile(join(root, 'lib', 'kinds', 'greet.ts'), source.replace("'../../lib/kinds/define.ts'", "'./define.ts'"))
  await appendKinds(root, ['greet'], "import { greet } from './greet.ts'")
}
