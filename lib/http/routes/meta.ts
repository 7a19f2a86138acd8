/** The API describing itself: its job kinds and this document. Public: they describe the API, not any account. */
import { z } from 'zod'
import { defineRoute } from '../openapi.ts'
import { KindCatalogSchema } from '../../kinds/catalog.ts'

const CACHED = { 'Cache-Control': { description: 'Public, cached for a few minutes.', required: true } }

export const metaRoutes = [
  defineRoute({
    method: 'GET',
    path: '/api/kinds',
    operationId: 'listKinds',
    summary: 'The job kinds this deploy runs, with their input JSON Schema, cost and lock',
    description: 'Public, like this document: it describes the API, not any account.',
    tags: ['meta'],
    auth: 'none',
    responses: { 200: { description: 'The kinds, in the order they were registered.', body: KindCatalogSchema, headers: CACHED } },
  }),
  defineRoute({
    method: 'GET',
    path: '/api/openapi.json',
    operationId: 'getOpenApiDocument',
    summary: 'This document',
    tags: ['meta'],
    auth: 'none',
    responses: { 200: { description: 'The OpenAPI 3.1 document.', body: z.record(z.string(), z.unknown()), headers: CACHED } },
  }),
]
