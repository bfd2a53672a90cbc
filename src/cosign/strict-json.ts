/**
 * JSON parsing for signed content. `JSON.parse` silently keeps the last of two equal keys, while other
 * readers (Go's encoding/json included) may see another value: a payload that means two things to two
 * verifiers must not pass. So signed JSON is scanned once for duplicate keys (compared after unescaping)
 * and excessive nesting, and only then handed to `JSON.parse`.
 */

/** Nesting deeper than this is refused before `JSON.parse` could overflow its stack. */
export const MAX_JSON_DEPTH = 256;

export type StrictJsonResult = { ok: true; value: unknown } | { ok: false; error: string };

/** Parses `text` as JSON, refusing duplicate object keys, bad syntax and nesting beyond {@link MAX_JSON_DEPTH}. */
export function parseStrictJson(text: string): StrictJsonResult {
  const problem = findJsonProblem(text);
  if (problem !== undefined) return { ok: false, error: problem };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, error: `invalid JSON: ${(e as Error).message}` };
  }
}

/**
 * Scans `text` and returns a description of the first problem (syntax, duplicate key, depth), or
 * `undefined` when it is valid JSON without duplicate keys. Iterative, so hostile nesting cannot
 * overflow the stack.
 */
export function findJsonProblem(text: string): string | undefined {
  const s = new Scanner(text);
  try {
    s.document();
    return undefined;
  } catch (e) {
    if (e instanceof JsonProblem) return e.message;
    throw e;
  }
}

class JsonProblem extends Error {}

type Frame = { kind: 'object'; keys: Set<string>; path: string; lastKey: string } | { kind: 'array'; path: string };

class Scanner {
  readonly #t: string;
  #i = 0;

  constructor(text: string) {
    this.#t = text;
  }

  document(): void {
    const stack: Frame[] = [];
    this.#ws();
    // After a value, the enclosing frame decides what may follow.
    let expectValue = true;
    for (;;) {
      if (expectValue) {
        const c = this.#t[this.#i];
        if (c === '{' || c === '[') {
          if (stack.length >= MAX_JSON_DEPTH) this.#fail(`nesting deeper than ${MAX_JSON_DEPTH}`);
          const parent = stack.at(-1);
          const path = parent === undefined ? '$' : parent.kind === 'object' ? `${parent.path}.${parent.lastKey}` : `${parent.path}[]`;
          this.#i++;
          this.#ws();
          if (c === '{') {
            const frame: Frame = { kind: 'object', keys: new Set(), path, lastKey: '' };
            stack.push(frame);
            if (this.#t[this.#i] === '}') {
              this.#i++;
              stack.pop();
              expectValue = false;
            } else {
              this.#key(frame);
            }
          } else {
            stack.push({ kind: 'array', path });
            if (this.#t[this.#i] === ']') {
              this.#i++;
              stack.pop();
              expectValue = false;
            }
          }
          continue;
        }
        this.#scalar();
        expectValue = false;
      }
      this.#ws();
      const top = stack.at(-1);
      if (top === undefined) {
        if (this.#i !== this.#t.length) this.#fail('trailing characters after the JSON value');
        return;
      }
      const c = this.#t[this.#i];
      if (c === ',') {
        this.#i++;
        this.#ws();
        if (top.kind === 'object') this.#key(top);
        expectValue = true;
      } else if ((c === '}' && top.kind === 'object') || (c === ']' && top.kind === 'array')) {
        this.#i++;
        stack.pop();
        expectValue = false;
      } else {
        this.#fail(`unexpected ${c === undefined ? 'end of input' : JSON.stringify(c)}`);
      }
    }
  }

  /** Reads `"key" :` into `frame`, refusing a key seen before in the same object. */
  #key(frame: Frame & { kind: 'object' }): void {
    if (this.#t[this.#i] !== '"') this.#fail('expected an object key');
    const key = this.#string();
    if (frame.keys.has(key)) throw new JsonProblem(`duplicate key ${JSON.stringify(key)} in ${frame.path}`);
    frame.keys.add(key);
    frame.lastKey = key;
    this.#ws();
    if (this.#t[this.#i] !== ':') this.#fail("expected ':' after an object key");
    this.#i++;
    this.#ws();
  }

  #scalar(): void {
    const c = this.#t[this.#i];
    if (c === '"') {
      this.#string();
      return;
    }
    if (c === 't') return this.#literal('true');
    if (c === 'f') return this.#literal('false');
    if (c === 'n') return this.#literal('null');
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.#number();
    this.#fail(`unexpected ${c === undefined ? 'end of input' : JSON.stringify(c)}`);
  }

  #literal(word: string): void {
    if (this.#t.startsWith(word, this.#i)) {
      this.#i += word.length;
      return;
    }
    this.#fail('invalid literal');
  }

  #number(): void {
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(this.#t.slice(this.#i, this.#i + 400));
    if (m === null) this.#fail('invalid number');
    this.#i += m[0].length;
  }

  /** Reads a string literal and returns its unescaped value (keys are compared unescaped). */
  #string(): string {
    this.#i++; // opening quote
    let out = '';
    let start = this.#i;
    for (;;) {
      const code = this.#t.charCodeAt(this.#i);
      if (Number.isNaN(code)) this.#fail('unterminated string');
      if (code === 0x22) {
        out += this.#t.slice(start, this.#i);
        this.#i++;
        return out;
      }
      if (code < 0x20) this.#fail('control character in string');
      if (code === 0x5c) {
        out += this.#t.slice(start, this.#i);
        const e = this.#t[this.#i + 1];
        const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e !== undefined && e in simple) {
          out += simple[e];
          this.#i += 2;
        } else if (e === 'u') {
          const hex = this.#t.slice(this.#i + 2, this.#i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.#fail('invalid \\u escape');
          out += String.fromCharCode(parseInt(hex, 16));
          this.#i += 6;
        } else {
          this.#fail('invalid escape');
        }
        start = this.#i;
        continue;
      }
      this.#i++;
    }
  }

  #ws(): void {
    for (;;) {
      const c = this.#t[this.#i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.#i++;
      else return;
    }
  }

  #fail(what: string): never {
    throw new JsonProblem(`invalid JSON at offset ${this.#i}: ${what}`);
  }
}
