/**
 * Lists the `ticker` test kind (support/kinds.ts) in a throwaway project root
 * (test/e2e/support.ts `makeProjectRoot`), so `netlify dev` there runs it
 * beside the production kinds. The repository's own kinds list is untouched.
 */
import { cp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { REPO } from '../e2e/support.ts'

export async function listTickerKind(root: string) {
  await cp(join(REPO, 'test', 'support', 'kinds.ts'), join(root, 'test', 'support', 'kinds.ts'))
  const index = join(root, 'lib', 'kinds', 'index.ts')
  const source = await readFile(index, 'utf8')
  const listed = source.replace(/(productionKinds[^=]*= \[[^\]]*)\]/, '$1, ticker]')
  if (listed === source) throw new Error('listTickerKind: lib/kinds/index.ts no longer lists productionKinds = [...]; update this helper')
  await writeFile(index, `import { ticker } from '../../test/support/kinds.ts'\n${listed}`)
}
