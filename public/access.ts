/**
 * Which credential the demo page uses for what. The page keeps no long-lived key:
 * - submitting: what the Access field holds (a submit token, or an API key a
 *   developer pasted), else in local development a 15-minute submit token
 *   from `/api/dev/token` (which `npm run dev` enables), fetched again before
 *   it runs out;
 * - watching a job and fetching its files: the job's `watchToken` from the
 *   submit answer, kept in this tab's sessionStorage so a reload resumes;
 * - canceling (a watch token only reads): the field's credential, else in
 *   local development a token for that job from `/api/dev/token?job=…`.
 */
import { type Client, createClient } from '../lib/client/index.ts'

interface Minted {
  token: string
  expiresAt: string
}

const WATCH_KEY = (jobId: string) => `watch-token:${jobId}`
/** Fetch a new dev token this long before the old one expires. */
const REFRESH_MARGIN_MS = 60_000

export interface Access {
  /** Looks for the local development token route; true when the page can work without a credential typed in. */
  detectLocal(): Promise<boolean>
  /** Something to submit with: a credential in the field, or local development. */
  ready(): boolean
  submitter(): Promise<Client>
  /** Keeps a job's watch token (from the submit answer) for watching it, now and after a reload. */
  remember(jobId: string, watchToken: string): void
  watcher(jobId: string): Promise<Client>
  canceller(jobId: string): Promise<Client>
}

export function createAccess(field: HTMLInputElement, hint: HTMLElement): Access {
  let local = false
  let submitToken: Minted | null = null
  const typed = () => field.value.trim()
  const fresh = (minted: Minted | null) => minted !== null && Date.parse(minted.expiresAt) - Date.now() > REFRESH_MARGIN_MS

  async function devToken(query = ''): Promise<Minted> {
    const res = await fetch(`/api/dev/token${query}`, { cache: 'no-store' })
    if (!res.ok) throw new Error(`The local development token route answered ${res.status}: is this npm run dev?`)
    return (await res.json()) as Minted
  }

  const stored = (jobId: string) => {
    try {
      return sessionStorage.getItem(WATCH_KEY(jobId))
    } catch {
      return null
    }
  }

  return {
    async detectLocal() {
      try {
        submitToken = await devToken()
        local = true
        hint.textContent =
          'Local development: this page asks /api/dev/token (enabled by npm run dev only) for 15-minute tokens and watches each job with its own read-only token; it holds no API key. Paste a token or key here to use that instead.'
      } catch {
        local = false
      }
      return local
    },
    ready: () => typed() !== '' || local,
    async submitter() {
      if (typed()) return createClient(typed().startsWith('djt_') ? { token: typed() } : { apiKey: typed() })
      if (!fresh(submitToken)) submitToken = await devToken()
      return createClient({ token: submitToken!.token })
    },
    remember(jobId, watchToken) {
      try {
        sessionStorage.setItem(WATCH_KEY(jobId), watchToken)
      } catch {
        // storage disabled: a reload then needs the field's credential
      }
    },
    async watcher(jobId) {
      const watchToken = stored(jobId)
      if (watchToken) return createClient({ token: watchToken })
      // A job this tab did not submit (one it joined, or a link): the field's credential, or a local job token.
      if (typed()) return createClient(typed().startsWith('djt_') ? { token: typed() } : { apiKey: typed() })
      return createClient({ token: (await devToken(`?job=${encodeURIComponent(jobId)}`)).token })
    },
    async canceller(jobId) {
      if (typed()) return createClient(typed().startsWith('djt_') ? { token: typed() } : { apiKey: typed() })
      return createClient({ token: (await devToken(`?job=${encodeURIComponent(jobId)}`)).token })
    },
  }
}
