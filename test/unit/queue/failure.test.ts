import { describe, expect, it } from 'vitest';
import { PromoteError } from '../../../src/errors.js';
import { classifyFailure, encodeFailure, parseFailure } from '../../../src/queue/failure.js';
import { exponentialBackoffMs } from '../../../src/queue/job-data.js';

describe('job failures', () => {
  describe('when a PromoteError is classified', () => {
    it('keeps its code, message and class', () => {
      expect(classifyFailure(new PromoteError('REGISTRY_THROTTLED', '429 from ghcr.io'))).toEqual({
        code: 'REGISTRY_THROTTLED',
        message: '429 from ghcr.io',
        retryable: true,
      });
      expect(classifyFailure(new PromoteError('SIGNATURE_INVALID', 'bad signature'))).toMatchObject({ retryable: false });
    });
  });

  describe('when anything else is classified', () => {
    it('is INTERNAL and retryable, and keeps only the class name, never the message', () => {
      const failure = classifyFailure(new TypeError('GET https://u:hunter2@r.example failed'));
      expect(failure).toEqual({ code: 'INTERNAL', message: 'unexpected TypeError (details in the worker log)', retryable: true });
      expect(classifyFailure('a string')).toMatchObject({ code: 'INTERNAL', message: 'unexpected string (details in the worker log)' });
      expect(classifyFailure(null)).toMatchObject({ code: 'INTERNAL' });
    });
  });

  describe('when a failure is encoded and parsed back', () => {
    it('gives back the code and the message, whatever the message holds', () => {
      for (const message of ['plain', '', '[NOT_A_CODE] x', 'two\nlines ] [', '[DIGEST_MISMATCH] nested']) {
        expect(parseFailure(encodeFailure({ code: 'DIGEST_MISMATCH', message }), true)).toEqual({ code: 'DIGEST_MISMATCH', message, final: true });
      }
      expect(parseFailure(encodeFailure({ code: 'INTERNAL', message: 'unexpected Error' }), false)).toEqual({
        code: 'INTERNAL',
        message: 'unexpected Error',
        final: false,
      });
    });
  });

  describe('when a reason was not written by the queue', () => {
    it('is INTERNAL with the whole reason as message', () => {
      expect(parseFailure('job stalled more than allowable limit', true)).toEqual({
        code: 'INTERNAL',
        message: 'job stalled more than allowable limit',
        final: true,
      });
      expect(parseFailure('[NO_SUCH_CODE] message', true)).toEqual({ code: 'INTERNAL', message: '[NO_SUCH_CODE] message', final: true });
      expect(parseFailure('[lower] message', false)).toMatchObject({ code: 'INTERNAL', message: '[lower] message' });
    });
  });

  describe('when the backoff is computed', () => {
    it('doubles per attempt as BullMQ does', () => {
      expect([1, 2, 3, 4].map((n) => exponentialBackoffMs(n, 5000))).toEqual([5000, 10_000, 20_000, 40_000]);
    });
  });
});
