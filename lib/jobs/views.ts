/** How jobs look from outside: to their clients, and to operators. */
import { iso } from '../core/clock.ts'
import type { JobAsset, JobSpec, JobState, PublicError } from '../core/types.ts'
import type { AssetRecord } from '../assets/record.ts'

export const jobUrls = (jobId: string) => ({
  statusUrl: `/api/jobs/${jobId}`,
  eventsUrl: `/api/jobs/${jobId}/events`,
  cancelUrl: `/api/jobs/${jobId}/cancel`,
})

export interface PublicJob {
  jobId: string
  kind: string
  status: JobState['status']
  cancelRequested: boolean
  progress: { message: string; percent: number | null } | null
  result?: unknown
  error: PublicError | null
  createdAt: string
  startedAt: string | null
  updatedAt: string
  finishedAt: string | null
  lastSeq: number
  statusUrl: string
  eventsUrl: string
  sourceTaskId: string | null
  clientJobId: string | null
  /** Credits this job was charged: 0 when an earlier job with the same clientJobId paid. */
  creditCharged: number
  /** Files the job saved so far, with their download URLs. */
  assets: JobAsset[]
}

/** The job as any client may see it: never the internal error, never the lease. */
export function publicJob(job: { spec: JobSpec } | { state: JobState }): PublicJob {
  if ('spec' in job) {
    const { spec } = job
    return {
      jobId: spec.jobId,
      kind: spec.kind,
      status: 'queued',
      cancelRequested: false,
      progress: null,
      error: null,
      createdAt: iso(spec.createdAt)!,
      startedAt: null,
      updatedAt: iso(spec.createdAt)!,
      finishedAt: null,
      lastSeq: 0,
      ...pick(jobUrls(spec.jobId)),
      sourceTaskId: spec.sourceTaskId,
      clientJobId: spec.clientJobId,
      creditCharged: spec.creditCharged,
      assets: [],
    }
  }
  const { state } = job
  return {
    jobId: state.jobId,
    kind: state.kind,
    status: state.status,
    cancelRequested: state.cancelRequested,
    progress: state.progress,
    ...(state.status === 'complete' ? { result: state.result } : {}),
    error: state.error,
    createdAt: iso(state.createdAt)!,
    startedAt: iso(state.startedAt),
    updatedAt: iso(state.updatedAt)!,
    finishedAt: iso(state.finishedAt),
    lastSeq: state.log.lastSeq,
    ...pick(jobUrls(state.jobId)),
    sourceTaskId: state.sourceTaskId,
    clientJobId: state.clientJobId,
    creditCharged: state.creditCharged,
    assets: state.assets,
  }
}

const pick = ({ statusUrl, eventsUrl }: ReturnType<typeof jobUrls>) => ({ statusUrl, eventsUrl })

/** The operator's view: both error forms, lease and lock, whether a result exists. */
export function operatorJob(state: JobState) {
  return {
    jobId: state.jobId,
    account: state.account,
    kind: state.kind,
    status: state.status,
    attempt: state.attempt,
    cancelRequested: state.cancelRequested,
    progress: state.progress,
    hasResult: state.result !== undefined,
    error: state.error,
    error_internal: state.errorInternal,
    lockKey: state.lockKey,
    createdAt: iso(state.createdAt),
    startedAt: iso(state.startedAt),
    updatedAt: iso(state.updatedAt),
    heartbeatAt: iso(state.heartbeatAt),
    finishedAt: iso(state.finishedAt),
    lastSeq: state.log.lastSeq,
    firstSeq: state.log.firstSeq,
    sourceTaskId: state.sourceTaskId,
    clientJobId: state.clientJobId,
    creditCharged: state.creditCharged,
    reservation: state.reservation,
  }
}

export const assetUrl = (assetId: string) => `/api/assets/${assetId}`

/** A generated file as its account sees it in listings (with a signed link from `link`); never the account itself. */
export function publicAsset(record: AssetRecord, link: (assetId: string) => string = assetUrl) {
  return {
    assetId: record.assetId,
    jobId: record.jobId,
    sourceTaskId: record.sourceTaskId,
    filename: record.filename,
    contentType: record.contentType,
    bytes: record.bytes,
    sha256: record.sha256,
    url: link(record.assetId),
    createdAt: iso(record.createdAt)!,
    expiresAt: iso(record.expiresAt)!,
  }
}
