import { describe, expect, it } from 'vitest';
import { reasonFor } from '../../../src/cosign/authority-check.js';

// How @sigstore/verify's error codes become the reasons an operator reads (and the threshold ranks).
describe('reasonFor', () => {
  it.each([
    ['TLOG_ERROR', 'expected 1 tlog entries, got 0', 'tlog evidence missing'],
    ['TIMESTAMP_ERROR', 'expected 1 timestamps, got 0', 'tlog evidence missing'],
    ['TLOG_ERROR', 'expected 1 tlog entries, got 0 valid', 'tlog evidence invalid'],
    ['TIMESTAMP_ERROR', 'timestamp does not verify', 'tlog evidence invalid'],
    ['TLOG_BODY_ERROR', 'got 0', 'tlog evidence invalid'],
    ['TLOG_INCLUSION_PROMISE_ERROR', 'bad SET', 'tlog evidence invalid'],
    ['CERTIFICATE_ERROR', 'untrusted chain', 'untrusted identity'],
    ['UNTRUSTED_SIGNER_ERROR', 'issuer', 'untrusted identity'],
    ['PUBLIC_KEY_ERROR', 'no key', 'untrusted identity'],
    ['SIGNATURE_ERROR', 'got 0', 'signature invalid'],
    ['VERIFICATION_ERROR', 'anything', 'signature invalid'],
  ])('%s "%s" → %s', (code, message, reason) => {
    expect(reasonFor(code, message)).toBe(reason);
  });
});
