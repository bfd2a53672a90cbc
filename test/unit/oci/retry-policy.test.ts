import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY, backoffDelay, parseRetryAfter, throttleDelay } from '../../../src/oci/retry-policy.js';

describe('parseRetryAfter', () => {
  const now = Date.parse('Sat, 28 Nov 2026 08:00:00 GMT');

  it('reads delta-seconds', () => {
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter([' 0 '], now)).toBe(0);
  });

  it('reads an HTTP date as the time left until it', () => {
    expect(parseRetryAfter('Sat, 28 Nov 2026 08:00:05 GMT', now)).toBe(5000);
  });

  it('treats a date in the past as no wait', () => {
    expect(parseRetryAfter('Sat, 28 Nov 2026 07:59:00 GMT', now)).toBe(0);
  });

  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});

describe('backoffDelay', () => {
  it('draws below a ceiling that doubles per retry up to the maximum (full jitter)', () => {
    const top = () => 0.999999;
    expect(backoffDelay(DEFAULT_RETRY_POLICY, 1, top)).toBe(199);
    expect(backoffDelay(DEFAULT_RETRY_POLICY, 3, top)).toBe(799);
    expect(backoffDelay(DEFAULT_RETRY_POLICY, 20, top)).toBe(9999);
    expect(backoffDelay(DEFAULT_RETRY_POLICY, 3, () => 0)).toBe(0);
  });
});

describe('throttleDelay', () => {
  it('when a 429 has no Retry-After, waits between half and all of a ceiling growing from seconds to a minute', () => {
    expect(throttleDelay(DEFAULT_RETRY_POLICY, 1, () => 0)).toBe(500);
    expect(throttleDelay(DEFAULT_RETRY_POLICY, 1, () => 0.999999)).toBe(999);
    expect(throttleDelay(DEFAULT_RETRY_POLICY, 4, () => 0)).toBe(4000);
    expect(throttleDelay(DEFAULT_RETRY_POLICY, 30, () => 0)).toBe(30_000);
    expect(throttleDelay(DEFAULT_RETRY_POLICY, 30, () => 0.999999)).toBe(59_999);
  });
});
