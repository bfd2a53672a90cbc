/**
 * A BullMQ worker in a process of its own, for tests that kill it. Run with plain Node 24 (it strips the types):
 *
 *   node test/support/queue-worker-child.ts
 *
 * Environment: REDIS_URL, BP_PREFIX, BP_LOCK_DURATION_MS, BP_STALLED_INTERVAL_MS. Its handler prints
 * `started <jobId>` and then hangs until its signal aborts, so that a test can SIGKILL it mid-job.
 */
import { registerHooks } from 'node:module';

// src/ imports `./x.js` for `./x.ts` (nodenext); Node's type stripping does not map them, so this hook does.
registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      const relative = specifier.startsWith('./') || specifier.startsWith('../');
      if (relative && specifier.endsWith('.js') && (error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') {
        return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
      }
      throw error;
    }
  },
});

const { BullmqJobQueue } = await import('../../src/queue/index.js');
const { silentLogger } = await import('../../src/log.js');

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
};

const queue = new BullmqJobQueue({
  url: env('REDIS_URL'),
  prefix: env('BP_PREFIX'),
  log: silentLogger(),
  lockDurationMs: Number(env('BP_LOCK_DURATION_MS')),
  stalledIntervalMs: Number(env('BP_STALLED_INTERVAL_MS')),
});
queue.work(
  async (job, _report, signal) => {
    process.stdout.write(`started ${job.id}\n`);
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
  },
  { concurrency: 1 },
);
process.stdout.write('ready\n');
