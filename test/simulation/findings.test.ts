/**
 * Replays of the scenarios in which the widened simulation found the bugs a
 * review of the protocol reported (the reliability issue's findings 2, 4, 6
 * and 8), and more it found by itself. Each is one seeded run of
 * protocol.test.ts's model; the comment tells what the seed showed on the
 * code it was found on.
 *
 * The credit redesign changed the order of a submit's writes (the spec before
 * the charge, the Idempotency-Key bound before the spec), so a seed no longer
 * takes the path it took then. Each replay therefore names the situation it
 * must reach (a coverage count of the run) and uses a seed of the same
 * scenario that reaches it on today's code; the seed that found the bug is in
 * the comment. A replay that no longer reaches its situation fails too.
 * (The long-poll's adaptive pace changed the interleavings again: findings 2
 * and "a charge whose submit died" use seeds that reach their situation with
 * the old and the new pace. Waiting jobs' specs at `waiting/`, read with the
 * started ones, moved findings 4, 6, 8 and "a charge whose submit died" to nearby
 * seeds again, and a settling's note of its job's reservation on the job's state moved
 * finding 2 and "a charge whose submit died".)
 */
import { describe, expect, it } from 'vitest'
import { type ScenarioParams, runScenario } from './scenario.ts'

const findings: [string, string | null, ScenarioParams][] = [
  [
    // Found by seed 1811631133: a charge landed, its answer was lost; another submit wrote the account
    // before the adapter's read-back, which then said "not written"; the retry found the job's own
    // reservation and recorded the job as free. Seen: "I4 J4: charged 0 but 1 charge entries".
    'finding 2: a charge that landed but whose answer was lost is recorded as charged (and refunded if the job fails)',
    'account/ write landed, its answer lost, overwritten before the read-back',
    { seed: 1811631194, clients: 6, resources: 2, jobsPerClient: 2, credits: 7, faultBeforePct: 2, faultAfterPct: 9, delayPct: 6, workerCrashPct: 2, functionCrashPct: 9, duplicatePct: 38, lateStartPct: 7, cancelPct: 41, idempotencyPct: 6, stallPermille: 4, invokeLostPct: 2, clientTimeoutPct: 24, lateClientPct: 2, dieAfterChargePct: 2, operatorGrants: 6 },
  ],
  [
    // Found by seed -788979521: the spec write landed but could not be confirmed (#741/thrown,
    // read-back failed); the submit's error path deleted the key record although its job existed;
    // the client's retry with the same key made a second job. Seen: "idempotency acct-a/idem-0-0:
    // one Idempotency-Key created 2 jobs: J2 J3".
    'finding 4: one Idempotency-Key never makes two jobs',
    'queue/ write landed, its answer lost',
    { seed: -788979510, clients: 1, resources: 2, jobsPerClient: 3, credits: 7, faultBeforePct: 3, faultAfterPct: 5, delayPct: 8, workerCrashPct: 30, functionCrashPct: 1, duplicatePct: 50, lateStartPct: 52, cancelPct: 1, idempotencyPct: 96, stallPermille: 4, invokeLostPct: 0, clientTimeoutPct: 28, lateClientPct: 6, dieAfterChargePct: 24, operatorGrants: 4 },
  ],
  [
    // Found by seed -345571423: the first request's lock write took 20 s; its client gave up at 30 s
    // and retried with the same key; 39 s after the key was claimed its job did not exist yet, so the
    // key counted as abandoned and made a second job, while the first request went on to make and
    // charge its own. Seen: "idempotency acct-a/idem-0-0: one Idempotency-Key created 2 jobs: J4 J7"
    // and "… left 2 charges standing: J4 J7" (and finding 6 for J9).
    'finding 4: a slow first request and a retry after 30 s do not make two jobs and two charges',
    'a slow request lost its Idempotency-Key to a retry',
    { seed: -345571374, clients: 2, resources: 1, jobsPerClient: 2, credits: 8, faultBeforePct: 1, faultAfterPct: 0, delayPct: 9, workerCrashPct: 58, functionCrashPct: 15, duplicatePct: 45, lateStartPct: 60, cancelPct: 34, idempotencyPct: 100, stallPermille: 0, invokeLostPct: 8, clientTimeoutPct: 50, lateClientPct: 10, dieAfterChargePct: 1, operatorGrants: 2 },
  ],
  [
    // Found by seed 1856289999: the worker call was delivered and the worker claimed the job; the
    // call's answer was lost; the submit answered 503 "could not be started" for a job that ran and
    // kept its charge. Seen: "I4 J15: the submit answered 503 worker_unavailable (could not be
    // started), but its worker claimed it and it ended complete with 1 credit(s) charged".
    'finding 6: a submit answers 503 worker_unavailable only for a job that never started',
    'worker call failed after its worker claimed: answered 202',
    { seed: 1856290066, clients: 2, resources: 3, jobsPerClient: 3, credits: 4, faultBeforePct: 10, faultAfterPct: 3, delayPct: 7, workerCrashPct: 1, functionCrashPct: 1, duplicatePct: 40, lateStartPct: 54, cancelPct: 32, idempotencyPct: 99, stallPermille: 0, invokeLostPct: 3, clientTimeoutPct: 46, lateClientPct: 13, dieAfterChargePct: 18, operatorGrants: 5 },
  ],
  [
    // Found by seed -2147483647: the reaper's pruning refunded several lost charges in one account
    // write; its plan flushed a chunk holding its own, uncommitted entries; grants committed meanwhile
    // and flushed that chunk; then the pruning's stale chunk landed over it and lost the race. Seen:
    // "I4 ledger/acct-a/c/0000000001 holds ledger entry 20 as {… refund J1 …}, but the committed
    // account writes hold {… grant …}". Today several payers of one reservation are refunded in one
    // write (sharedWorkPct).
    'finding 8: a multi-entry ledger append never overwrites a committed ledger chunk',
    'multi-entry ledger write',
    { seed: -2147483622, clients: 4, resources: 1, jobsPerClient: 2, credits: 8, faultBeforePct: 2, faultAfterPct: 3, delayPct: 4, workerCrashPct: 15, functionCrashPct: 4, duplicatePct: 14, lateStartPct: 29, cancelPct: 27, idempotencyPct: 11, stallPermille: 0, invokeLostPct: 7, clientTimeoutPct: 41, lateClientPct: 44, dieAfterChargePct: 46, operatorGrants: 8, sharedWorkPct: 30 },
  ],
  [
    // Found by seed -6: a submit died right after its charge (client job id cj-1); an hour later,
    // before the reaper pruned that expired reservation, a new submit with the same client job id
    // replaced it; the lost charge was never refunded. Seen: "I4 J8 after retention: 0 refunds,
    // expected 1 (credit lost)". Today the spec precedes the charge, so that job exists and is settled.
    'a charge whose submit died is refunded even if its client job id is used again after the hour',
    'submit died right after its charge',
    { seed: 0, clients: 3, resources: 2, jobsPerClient: 2, credits: 8, faultBeforePct: 2, faultAfterPct: 5, delayPct: 3, workerCrashPct: 59, functionCrashPct: 6, duplicatePct: 32, lateStartPct: 6, cancelPct: 45, idempotencyPct: 59, stallPermille: 3, invokeLostPct: 11, clientTimeoutPct: 34, lateClientPct: 39, dieAfterChargePct: 16, operatorGrants: 2 },
  ],
  [
    // Found on the redesigned code: a spec create landed, the SDK's retry answered 412 and the
    // adapter's read-back threw; the submit freed the key without failing the job, which stayed
    // queued until the reaper failed it, while the client's retry with the same key made a second
    // job. Seen: "idempotency acct-b/idem-1-1: one Idempotency-Key created 2 jobs: J44 J46".
    'a spec write that landed but threw is failed by its submit before the key is freed',
    'queue/ write landed, its answer lost',
    { seed: 668053128, clients: 6, resources: 1, jobsPerClient: 3, credits: 8, faultBeforePct: 0, faultAfterPct: 5, delayPct: 7, workerCrashPct: 1, functionCrashPct: 0, duplicatePct: 0, lateStartPct: 0, cancelPct: 1, idempotencyPct: 88, stallPermille: 0, invokeLostPct: 0, clientTimeoutPct: 30, lateClientPct: 38, dieAfterChargePct: 54, operatorGrants: 7 },
  ],
  [
    // Found on the redesigned code: a retry with the same key read the job's state (none: queued),
    // then the reaper failed the job and removed its spec before the retry's spec read; the key
    // looked abandoned and the retry made a second job. Seen: "idempotency acct-a/idem-0-0: one
    // Idempotency-Key created 2 jobs: J4 J6".
    'a retry whose key\'s job changes from queued to failed between two reads is answered with that job',
    null,
    { seed: 644140438, clients: 3, resources: 2, jobsPerClient: 2, credits: 5, faultBeforePct: 0, faultAfterPct: 0, delayPct: 8, workerCrashPct: 15, functionCrashPct: 0, duplicatePct: 10, lateStartPct: 36, cancelPct: 1, idempotencyPct: 79, stallPermille: 2, invokeLostPct: 11, clientTimeoutPct: 16, lateClientPct: 1, dieAfterChargePct: 1, operatorGrants: 0 },
  ],
  [
    // Found with retries merged beside queueing: an attempt's `retrying` write landed but its
    // answer came 16 s late (netlify/primitives#741); meanwhile a cancel ended the job. The read-back
    // showed the canceled state with the worker's own write token and cancelRequested, and the
    // worker "canceled the waiting job" again on top of it. Seen: "I2 J3: 2 terminal events".
    'a cancel that ended a retry wait while the worker\'s write answer was late is not ended twice',
    null,
    { seed: 77536099, clients: 6, resources: 2, jobsPerClient: 1, credits: 2, faultBeforePct: 0, faultAfterPct: 10, delayPct: 2, workerCrashPct: 6, functionCrashPct: 3, duplicatePct: 5, lateStartPct: 5, cancelPct: 23, idempotencyPct: 38, stallPermille: 1, invokeLostPct: 1, clientTimeoutPct: 37, lateClientPct: 21, dieAfterChargePct: 0, operatorGrants: 0, retryPct: 39 },
  ],
  [
    // Found with queueing merged: a submit bound its key and sent its spec write, then storage
    // stalled for 122 s with the write in flight; the submit was stopped at its time limit and the
    // write landed 157 s after the bind. A retry with the key had taken it over at 90 s (and the
    // resource's lock, its holder looking abandoned): two jobs under one key. Takeovers now wait
    // SUBMIT_WRITES_LAND_MS (5 min). Seen: "one Idempotency-Key created 2 jobs: J10 J12".
    'a spec write landing minutes after its submit bound the key does not make a second job',
    null,
    { seed: 460538364, clients: 5, resources: 3, jobsPerClient: 3, credits: 4, faultBeforePct: 0, faultAfterPct: 2, delayPct: 5, workerCrashPct: 3, functionCrashPct: 13, duplicatePct: 15, lateStartPct: 23, cancelPct: 1, idempotencyPct: 86, stallPermille: 2, invokeLostPct: 1, clientTimeoutPct: 1, lateClientPct: 2, dieAfterChargePct: 1, operatorGrants: 0, queuedPct: 40, delayedPct: 10 },
  ],
  [
    // Found with queueing merged: a submit took a resource's lock and died before writing its job;
    // a job queued behind it and was then canceled. Its guard went with it, so nothing handed the
    // stale lock on, and every later submit was refused while the (dead) line stood. A refused
    // submit now hands a gone holder's lock on (or frees it) itself. Seen: "a new job on
    // acct-b:res:r1 after everything settled was refused: 409 resource_locked".
    'a line whose waiting jobs were all canceled behind a dead holder does not block the resource',
    null,
    { seed: 460534864, clients: 5, resources: 2, jobsPerClient: 3, credits: 4, faultBeforePct: 0, faultAfterPct: 2, delayPct: 5, workerCrashPct: 1, functionCrashPct: 9, duplicatePct: 1, lateStartPct: 1, cancelPct: 3, idempotencyPct: 90, stallPermille: 1, invokeLostPct: 1, clientTimeoutPct: 1, lateClientPct: 1, dieAfterChargePct: 1, operatorGrants: 0, queuedPct: 32, delayedPct: 23 },
  ],
  [
    // Found with the per-account limit: a submit under the limit took the resource's lock and filed
    // its waiting spec, then stalled past its time limit before its charge. Its guard took "holds its
    // lock" as "its submit got through" and started it: a job that ran complete and was never paid
    // for. Under the limit only the account slot (taken after the charge) says so now. Seen: "I4
    // J6: complete but unpaid (payers J6)".
    'a submit under an account limit that died before its charge is not started by its guard',
    null,
    { seed: 939474938, clients: 4, resources: 1, jobsPerClient: 3, credits: 1, faultBeforePct: 0, faultAfterPct: 0, delayPct: 0, workerCrashPct: 0, functionCrashPct: 0, duplicatePct: 0, lateStartPct: 0, cancelPct: 0, idempotencyPct: 22, stallPermille: 3, invokeLostPct: 0, clientTimeoutPct: 1, lateClientPct: 1, dieAfterChargePct: 4, operatorGrants: 0, accountLimit: 1, queuedPct: 1, delayedPct: 0, retryPct: 2, accountLimitChange: { to: 'raised', atMinute: 8 } },
  ],
  [
    // Found with the per-account limit: a job waited in its account's line (its guard entry handled
    // and gone); a cancel committed it canceled and died while settling it. Nothing walks waiting
    // jobs, so it was never refunded and its waiting spec stayed for good. A cancel of a job that
    // never started now files a guard entry first. Seen: "I4 J24: canceled before it started with
    // 0 refunds, 1 owed".
    'a cancel of a waiting job that dies before settling it is settled by its guard entry',
    null,
    { seed: 1513283492, clients: 4, resources: 2, jobsPerClient: 3, credits: 4, faultBeforePct: 2, faultAfterPct: 9, delayPct: 0, workerCrashPct: 43, functionCrashPct: 14, duplicatePct: 2, lateStartPct: 2, cancelPct: 45, idempotencyPct: 70, stallPermille: 2, invokeLostPct: 1, clientTimeoutPct: 5, lateClientPct: 23, dieAfterChargePct: 1, operatorGrants: 0, accountLimit: 2, queuedPct: 1, delayedPct: 1, retryPct: 1 },
  ],
  [
    // Found with the per-account limit: a reaper settling a job filed a `start` entry for the next
    // job of the account's line, and was stopped after its hand-off landed but before it started
    // that job. The dispatcher had handled the entry in between, found the job still waiting (the
    // write had not landed) and dropped it: a job holding a slot, never started, its account
    // blocked. A `start` entry for a job near the line's head now comes back. Seen: "I11
    // slots/acct-a: slots still held after the quiet phase by J6".
    'a start entry handled before its hand-off landed comes back for a job near the head of its account line',
    null,
    { seed: -253605290, clients: 6, resources: 3, jobsPerClient: 1, credits: 7, faultBeforePct: 1, faultAfterPct: 0, delayPct: 7, workerCrashPct: 21, functionCrashPct: 10, duplicatePct: 26, lateStartPct: 35, cancelPct: 2, idempotencyPct: 99, stallPermille: 3, invokeLostPct: 16, clientTimeoutPct: 4, lateClientPct: 17, dieAfterChargePct: 3, operatorGrants: 4, accountLimit: 1, queuedPct: 1, delayedPct: 14, retryPct: 3, accountLimitChange: { to: 'raised', atMinute: 6 } },
  ],
  [
    // Found with the per-account limit (whose settling does more, so storage faults stop it more
    // often): a failed job left its reservation unearned and its settling died; the reaper's
    // settles of it kept failing for over an hour, and the reservation, over and past its hour,
    // was removed. The job then found no reservation and refunded the payment it had made for a
    // job that completed (so it did when a newer reservation under the id replaced it). A job's
    // settling now notes the reservation on its state before it leaves it. Seen: "I4 J5: complete
    // but unpaid (payers J2)".
    'a job settled again after its reservation was removed keeps its payment in it',
    null,
    { seed: 1977532120, clients: 4, resources: 3, jobsPerClient: 3, credits: 2, faultBeforePct: 3, faultAfterPct: 6, delayPct: 9, workerCrashPct: 3, functionCrashPct: 3, duplicatePct: 45, lateStartPct: 76, cancelPct: 11, idempotencyPct: 33, stallPermille: 1, invokeLostPct: 20, clientTimeoutPct: 29, lateClientPct: 39, dieAfterChargePct: 9, operatorGrants: 1, accountLimit: 2, queuedPct: 20, delayedPct: 6, retryPct: 1, accountLimitChange: { to: 'raised', atMinute: 66 } },
  ],
  [
    // Found with the per-account limit: a guard failing a job whose submit had died was stopped at
    // its time limit with its write in flight; the next handling's write lost to it when it landed,
    // and left the job failed but never settled (no refund, its waiting spec kept for good: nothing
    // walks waiting jobs). An ended job found there is settled now. Seen: "I4 J11: failed before it
    // started with 0 refunds, 1 owed".
    'a guard whose failing write lost to an earlier handling\'s still settles the job',
    null,
    { seed: -1703391236, clients: 4, resources: 1, jobsPerClient: 2, credits: 5, faultBeforePct: 3, faultAfterPct: 1, delayPct: 3, workerCrashPct: 41, functionCrashPct: 3, duplicatePct: 35, lateStartPct: 20, cancelPct: 49, idempotencyPct: 94, stallPermille: 3, invokeLostPct: 7, clientTimeoutPct: 3, lateClientPct: 37, dieAfterChargePct: 19, operatorGrants: 0, accountLimit: 1, queuedPct: 1, delayedPct: 1, retryPct: 4, accountLimitChange: { to: 'raised', atMinute: 13 } },
  ],
  [
    // Found with the per-account limit (every job under a limit is filed as waiting): a submit's
    // spec write was in flight when its function stalled and died, and landed 3 minutes later; its
    // guard, 90 s after the submit, had found nothing and gone. The job waited for good: nothing
    // walks waiting jobs. The guard now comes after the 5 minutes in which a dead submit's writes
    // may land. Seen: "I9 waiting jobs remain after the quiet phase: waiting/J4".
    'a waiting spec landing minutes after its submit died is still guarded',
    null,
    { seed: -685323782, clients: 3, resources: 2, jobsPerClient: 3, credits: 4, faultBeforePct: 0, faultAfterPct: 5, delayPct: 8, workerCrashPct: 51, functionCrashPct: 0, duplicatePct: 43, lateStartPct: 67, cancelPct: 17, idempotencyPct: 97, stallPermille: 2, invokeLostPct: 3, clientTimeoutPct: 15, lateClientPct: 0, dieAfterChargePct: 23, operatorGrants: 5, accountLimit: 1, queuedPct: 1, delayedPct: 1, retryPct: 2, accountLimitChange: { to: 'raised', atMinute: 1 } },
  ],
]

describe('scenarios in which the simulation found money lost or doubled, or a job lost', () => {
  it.each(findings)('%s', async (_name, situation, params) => {
    const result = await runScenario(params, { trace: false })
    expect(result.jobs).toBeGreaterThan(0)
    if (situation) expect(result.coverage.get(situation) ?? 0, `the run no longer reaches: ${situation}`).toBeGreaterThan(0)
    expect(result.violations).toEqual([])
  }, 60_000)
})
