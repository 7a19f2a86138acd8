/** The job kinds this deploy runs. Add a kind: write its file, list it here. */
import type { JobKind } from './define.ts'
import { indexDocuments } from './index-documents.ts'
import { render } from './render.ts'
import { summarize } from './summarize.ts'

export const productionKinds: readonly JobKind<any, any>[] = [summarize, render, indexDocuments]
