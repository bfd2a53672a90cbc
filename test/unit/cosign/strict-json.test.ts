import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, parseStrictJson } from '../../../src/cosign/strict-json.js';
import { decodeBase64Lenient } from '../../../src/cosign/encoding.js';

describe('parseStrictJson', () => {
  describe('when the JSON is valid and has no duplicate keys', () => {
    it.each([
      '{"a":1,"b":[1,2,{"a":2}],"c":{"a":null}}',
      '[]',
      '"x"',
      ' {"a" : "\\u00e9\\n"} ',
      '{"a":-1.5e+3,"b":true,"c":false}',
    ])('parses %s like JSON.parse', (text) => {
      expect(parseStrictJson(text)).toEqual({ ok: true, value: JSON.parse(text) });
    });
  });

  describe('when an object repeats a key', () => {
    it.each([
      ['plainly', '{"a":1,"a":2}', '"a" in $'],
      ['nested', '{"critical":{"image":{"docker-manifest-digest":"x","docker-manifest-digest":"y"}}}', '$.critical.image'],
      ['spelled with an escape', '{"a":1,"\\u0061":2}', '"a"'],
      ['inside an array', '[{"k":1},{"k":1,"k":2}]', '$[]'],
    ])('refuses it (%s)', (_what, text, where) => {
      const r = parseStrictJson(text);
      expect(r.ok).toBe(false);
      expect(r.ok ? '' : r.error).toContain('duplicate key');
      expect(r.ok ? '' : r.error).toContain(where);
    });

    it('allows the same key in sibling objects', () => {
      expect(parseStrictJson('{"a":{"k":1},"b":{"k":2}}').ok).toBe(true);
    });
  });

  describe('when the input is hostile', () => {
    it('refuses nesting deeper than the limit without overflowing the stack', () => {
      const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
      const r = parseStrictJson(deep);
      expect(r.ok ? '' : r.error).toContain(`nesting deeper than ${MAX_JSON_DEPTH}`);
    });
    it.each(['{"a":1,}', '{"a" 1}', '{"a":1} x', '{"a":"\u0001"}', '{"a":01}', '', '{"a":tru}'])('refuses malformed JSON %j', (text) => {
      expect(parseStrictJson(text).ok).toBe(false);
    });
  });
});

describe('decodeBase64Lenient', () => {
  it('strips whitespace, including the newlines real annotations carry', () => {
    expect(decodeBase64Lenient('aGVs\nbG8=\n')?.toString()).toBe('hello');
    expect(decodeBase64Lenient(' aGVsbG8 ')?.toString()).toBe('hello');
  });
  it.each(['aGVsbG8*', 'a', '====', 'aGVsbG8=a', 'aG=Vs'])('refuses invalid base64 %j instead of skipping characters', (s) => {
    expect(decodeBase64Lenient(s)).toBeUndefined();
  });
});
