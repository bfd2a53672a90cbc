import { PromoteError } from '../errors.js';

/**
 * Parses `-a` flag values as cosign does (`cmd/cosign/cli/options/annotations.go`): each flag value is a
 * pflag string slice, i.e. a CSV record, so commas split entries (`-a k=a,b` is `k=a` and a bad `b`;
 * quote to keep a comma: `-a '"k=a,b"'`); each entry splits at the first `=`; values are strings; a
 * repeated key keeps the last value. A malformed entry is `INVALID_ARGUMENT`.
 */
export function parseAnnotationFlags(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const value of values) {
    for (const entry of splitCsvRecord(value)) {
      const eq = entry.indexOf('=');
      if (eq <= 0) throw new PromoteError('INVALID_ARGUMENT', `annotation ${JSON.stringify(entry)} must be key=value`);
      const key = entry.slice(0, eq);
      Object.defineProperty(out, key, { value: entry.slice(eq + 1), enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}

/** Splits one CSV record (Go `encoding/csv` rules: `"` quotes a field, `""` is a literal quote). */
function splitCsvRecord(s: string): string[] {
  if (s === '') return [];
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw new PromoteError('INVALID_ARGUMENT', `annotation ${JSON.stringify(s)} has an unterminated quote`);
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += s[i];
        i++;
      }
      if (i < s.length && s[i] !== ',') throw new PromoteError('INVALID_ARGUMENT', `annotation ${JSON.stringify(s)} has text after a closing quote`);
    } else {
      const comma = s.indexOf(',', i);
      field = comma === -1 ? s.slice(i) : s.slice(i, comma);
      i = comma === -1 ? s.length : comma;
    }
    fields.push(field);
    if (i >= s.length) return fields;
    i++; // the comma
  }
}

/**
 * cosign's annotation rule: every required key is present in the signed annotations with an exactly
 * equal **string** (subset semantics; a signed `true` or `1657296609` never equals `"true"` or
 * `"1657296609"`; `k=` does not match an absent key). Returns the keys that fail.
 */
export function annotationMismatches(required: Readonly<Record<string, string>>, signed: Readonly<Record<string, unknown>> | null | undefined): string[] {
  const bad: string[] = [];
  for (const [k, want] of Object.entries(required)) {
    const has = signed != null && Object.hasOwn(signed, k);
    const got = has ? signed[k] : undefined;
    if (typeof got !== 'string' || got !== want) bad.push(k);
  }
  return bad;
}
