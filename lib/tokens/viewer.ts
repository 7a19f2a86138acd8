/**
 * Whose jobs and files a request may see: a whole account's (an API key), or
 * only those a token's scope covers. Reads of jobs and assets take a viewer
 * where they used to take an account, and treat anything it does not cover
 * exactly like an id that exists nowhere (404), with the same reads.
 */
export type Viewer = string | ScopedViewer

export interface ScopedViewer {
  account: string
  /** Whether the token's scope covers this job or file of its account. */
  covers(item: { jobId: string; sourceTaskId: string | null }): boolean
}

export const viewerAccount = (viewer: Viewer): string => (typeof viewer === 'string' ? viewer : viewer.account)

/** True when `item` (a job's spec or state, or an asset record) is visible to `viewer`. */
export function sees(viewer: Viewer, item: { account: string; jobId: string; sourceTaskId: string | null }): boolean {
  if (typeof viewer === 'string') return item.account === viewer
  return item.account === viewer.account && viewer.covers(item)
}
