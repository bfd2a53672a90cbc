import { describe, expect, it } from 'vitest';
import { decide, stripTag, type Observed } from '../../../src/controller/decide.js';
import { parseDuration } from '../../../src/controller/duration.js';
import { jobIdOf } from '../../../src/queue/job-id.js';
import type { JobSnapshot } from '../../../src/queue/job-queue.js';
import type { Promotion } from '../../../src/sources/promotion.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const OTHER = `sha256:${'b'.repeat(64)}`;
const now = new Date('2026-12-01T12:00:00Z');

function promotion(over: Partial<Promotion> = {}): Promotion {
  return {
    ref: { namespace: 'delivery', name: 'app-prod' }, uid: 'uid-1', generation: 1,
    spec: { source: { bundle: 'reg.example/app:1.0.0' }, target: { repository: 'reg.example/prod/app' } },
    ...over,
  };
}

const resolved: Observed['source'] = { kind: 'resolved', digest: DIGEST, reference: 'reg.example/app:1.0.0', tags: ['1.0.0'], followed: true };

function job(p: Promotion, state: JobSnapshot['state'], over: Partial<JobSnapshot> = {}): JobSnapshot {
  const first = decide(p, { source: resolved }, now);
  const data = first.enqueue!;
  return { id: jobIdOf(data), state, data, attemptsMade: 1, createdAt: now.getTime() - 60_000, ...over };
}

describe('decide', () => {
  it('when nothing was promoted yet, it enqueues a job pinned to the resolved digest with the source tag', () => {
    const d = decide(promotion(), { source: resolved }, now);
    expect(d.enqueue).toMatchObject({ source: `reg.example/app@${DIGEST}`, sourceDigest: DIGEST, target: 'reg.example/prod/app', tags: ['1.0.0'] });
    expect(d.status).toMatchObject({ phase: 'Queued', observedGeneration: 1, sourceDigest: DIGEST, jobId: jobIdOf(d.enqueue!) });
    expect(d.events.map((e) => e.reason)).toEqual(['PromotionQueued']);
  });

  it('when decided twice on the same input, it decides the same (level-triggered, idempotent job id)', () => {
    const p = promotion();
    const a = decide(p, { source: resolved }, now);
    const b = decide({ ...p, status: a.status }, { source: resolved }, now);
    expect(b.enqueue?.trigger).toBe(a.enqueue?.trigger);
    expect(jobIdOf(b.enqueue!)).toBe(jobIdOf(a.enqueue!));
    expect(b.status).toEqual(a.status);
    expect(b.events).toEqual([]);
  });

  it('when the job completed, it is Ready with the promoted digest, a history entry and a success event', () => {
    const p = promotion();
    const queued = decide(p, { source: resolved }, now);
    const j = job(p, 'completed', { finishedAt: now.getTime(), startedAt: now.getTime() - 5000, result: {
      sourceDigest: DIGEST, target: 'reg.example/prod/app', tags: ['1.0.0'], startedAt: '', finishedAt: '',
      counts: { images: 1, artifacts: 3, blobsUploaded: 2, blobsMounted: 0, blobsPresent: 0, bytes: 10, registryRequests: 20 } } });
    const d = decide({ ...p, status: queued.status }, { source: resolved, job: j }, now);
    expect(d.status.phase).toBe('Succeeded');
    expect(d.status.promotedDigest).toBe(DIGEST);
    expect(d.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Promoted' });
    expect(d.status.history).toHaveLength(1);
    expect(d.status.lastPromotion).toMatchObject({ result: 'Succeeded', generation: 1, counts: { blobsUploaded: 2 } });
    expect(d.events.map((e) => e.reason)).toEqual(['PromotionSucceeded']);
    expect(d.requeueAfterMs).toBe(parseDuration('5m'));
    // Once recorded, the same observation adds nothing to the history.
    expect(decide({ ...p, status: d.status }, { source: resolved, job: j }, now).status.history).toHaveLength(1);
  });

  it('when verification failed in the source, Ready is False with VerificationFailed and the message, and it retries after the interval', () => {
    const p = promotion({ spec: { ...promotion().spec, verify: { authorities: [{ keys: [{ pem: 'x' }] }] }, interval: '1m' } });
    const queued = decide(p, { source: resolved }, now);
    const failed = job(p, 'failed', { finishedAt: now.getTime(), progress: { phase: 'verify-source', artifactsDone: 0, artifactsTotal: 2, blobsDone: 0, blobsTotal: 0, bytesDone: 0, bytesTotal: 0 },
      failure: { code: 'VERIFICATION_FAILED', message: 'signature verification failed in the source x: sha256:…: missing or incorrect annotation', final: true } });
    const d = decide({ ...p, status: queued.status }, { source: resolved, job: failed }, now);
    expect(d.status.phase).toBe('Failed');
    expect(d.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'VerificationFailed' });
    expect(d.status.conditions?.find((c) => c.type === 'Ready')?.message).toMatch(/missing or incorrect annotation/);
    expect(d.status.conditions?.find((c) => c.type === 'SourceVerified')).toMatchObject({ status: 'False' });
    expect(d.enqueue).toBeUndefined();
    expect(d.requeueAfterMs).toBe(60_000);
    expect(d.events).toEqual([expect.objectContaining({ type: 'Warning', reason: 'VerificationFailed' })]);

    const later = new Date(now.getTime() + 60_000);
    const retry = decide({ ...p, status: d.status }, { source: resolved, job: failed }, later);
    expect(retry.enqueue?.trigger).toBe(`|retry@${now.getTime()}`);
    expect(jobIdOf(retry.enqueue!)).not.toBe(failed.id);
    // The status follows the retry job, so its outcome becomes the promotion's.
    expect(retry.status).toMatchObject({ jobId: jobIdOf(retry.enqueue!), phase: 'Queued', lastPromotion: { result: 'Failed' } });
    const retryJob: JobSnapshot = { id: jobIdOf(retry.enqueue!), state: 'completed', data: retry.enqueue!, attemptsMade: 1, createdAt: later.getTime(), finishedAt: later.getTime() + 1000 };
    const recovered = decide({ ...p, status: retry.status }, { source: resolved, job: retryJob }, new Date(later.getTime() + 2000));
    expect(recovered.status).toMatchObject({ phase: 'Succeeded', promotedDigest: DIGEST, lastPromotion: { result: 'Succeeded' } });
    expect(recovered.status.history?.map((h) => h.result)).toEqual(['Succeeded', 'Failed']);
    expect(recovered.events.map((e) => e.reason)).toEqual(['PromotionSucceeded']);
  });

  it('when the requestedAt annotation changes, it enqueues a new job for the unchanged spec', () => {
    const p = promotion();
    const first = decide(p, { source: resolved }, now);
    const bumped = decide({ ...p, requestedAt: 'now', status: first.status }, { source: resolved, job: job(p, 'completed') }, now);
    expect(bumped.enqueue?.trigger).toBe('now');
    expect(jobIdOf(bumped.enqueue!)).not.toBe(first.status.jobId);
  });

  it('when the spec generation changes while a job runs, the new generation gets its own job and status reflects it', () => {
    const p = promotion();
    const first = decide(p, { source: resolved }, now);
    const running = job(p, 'active');
    const edited = { ...p, generation: 2, status: first.status, spec: { ...p.spec, target: { repository: 'reg.example/prod/app', tags: ['stable'] } } };
    const d = decide(edited, { source: resolved, job: running }, now);
    expect(d.enqueue).toMatchObject({ promotion: { generation: 2 }, tags: ['stable'] });
    expect(d.status.observedGeneration).toBe(2);
    expect(d.status.jobId).not.toBe(running.id);
  });

  it('when the source tag moves to a new digest, it enqueues a promotion of the new digest', () => {
    const p = promotion();
    const first = decide(p, { source: resolved }, now);
    const moved = decide({ ...p, status: first.status }, { source: { ...resolved, digest: OTHER } }, now);
    expect(moved.enqueue?.sourceDigest).toBe(OTHER);
  });

  it('when the same digest was promoted and the target still holds it, it stays Ready without a job', () => {
    const p = promotion();
    const queued = decide(p, { source: resolved }, now);
    const done = decide({ ...p, status: queued.status }, { source: resolved, job: job(p, 'completed', { finishedAt: now.getTime() }) }, now);
    const steady = decide({ ...p, status: done.status }, { source: resolved, targetIntact: true }, now);
    expect(steady.enqueue).toBeUndefined();
    expect(steady.status.phase).toBe('Succeeded');
    const broken = decide({ ...p, status: done.status }, { source: resolved, targetIntact: false }, now);
    expect(broken.enqueue?.sourceDigest).toBe(DIGEST);
  });

  it('when the source cannot be resolved, it is Ready=False with the reason, and retries soon only for retryable errors', () => {
    const d = decide(promotion(), { source: { kind: 'failed', reason: 'RegistryUnauthorized', message: '401', retryable: false } }, now);
    expect(d.status.conditions?.find((c) => c.type === 'SourceResolved')).toMatchObject({ status: 'False', reason: 'RegistryUnauthorized' });
    expect(d.requeueAfterMs).toBe(5 * 60_000);
    expect(decide(promotion(), { source: { kind: 'failed', reason: 'RegistryUnavailable', message: '503', retryable: true } }, now).requeueAfterMs).toBe(30_000);
  });

  it('when suspended, it enqueues nothing and says so', () => {
    const d = decide(promotion({ spec: { ...promotion().spec, suspend: true } }), { source: resolved }, now);
    expect(d.enqueue).toBeUndefined();
    expect(d.status.phase).toBe('Suspended');
  });

  it('keeps lastTransitionTime while a condition keeps its status', () => {
    const p = promotion();
    const a = decide(p, { source: resolved }, now);
    const b = decide({ ...p, status: a.status }, { source: resolved }, new Date(now.getTime() + 1000));
    expect(b.status.conditions?.find((c) => c.type === 'SourceResolved')?.lastTransitionTime).toBe(now.toISOString());
  });
});

describe('parseDuration and stripTag', () => {
  it('reads Go durations and refuses anything else', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('5 minutes')).toBeUndefined();
  });
  it('strips a tag but not a port', () => {
    expect(stripTag('127.0.0.1:5000/app:v1')).toBe('127.0.0.1:5000/app');
    expect(stripTag('127.0.0.1:5000/app')).toBe('127.0.0.1:5000/app');
  });
});
