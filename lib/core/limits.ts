/**
 * How long after a synchronous function (a submit) starts a write it sent
 * may still land: it runs at most 60 s on Netlify, and a write sent just
 * before it is stopped can arrive later still when storage is slow. Past
 * this, whatever the submit did not write it never will: its charge is
 * looked for up to here (credits/settle.ts), and its Idempotency-Key and
 * resource lock are taken over only after it (jobs/idempotency.ts, submit.ts).
 * A bound, not a proof: a write delayed longer than this (the simulation's
 * stalls can hold one for minutes) could land after the takeover; the README
 * lists it under what is not proven.
 */
export const SUBMIT_WRITES_LAND_MS = 5 * 60_000
