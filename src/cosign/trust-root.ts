import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { X509Certificate } from '@sigstore/core';
import { PromoteError } from '../errors.js';
import { isRecord, sha256 } from './encoding.js';
import { parsePublicKey } from './public-key.js';
import { parseStrictJson } from './strict-json.js';

/** A transparency (or certificate transparency) log key, selected by `logId`. */
export interface LogKey {
  /** Raw log id bytes (sha256 of the key's DER SPKI for Rekor v1). */
  readonly logId: Buffer;
  readonly baseUrl: string;
  readonly key: KeyObject;
  /** DER SubjectPublicKeyInfo. */
  readonly spki: Buffer;
  readonly validFor: { readonly start: Date; readonly end: Date };
}

export interface CertificateAuthority {
  /** Leaf-most first, as in the trusted root: intermediates … root. */
  readonly certChain: X509Certificate[];
  readonly validFor: { readonly start: Date; readonly end: Date };
}

/** Trust material: log keys, Fulcio CAs, CT logs, TSAs. Built from a trusted-root JSON or a Rekor PEM key. */
export interface TrustRoot {
  /** Where it came from, for messages. */
  readonly source: string;
  readonly tlogs: readonly LogKey[];
  readonly ctlogs: readonly LogKey[];
  readonly certificateAuthorities: readonly CertificateAuthority[];
  readonly timestampAuthorities: readonly CertificateAuthority[];
}

const BEGINNING = new Date(0);
const END = new Date(8_640_000_000_000_000);

export const EMPTY_TRUST_ROOT: TrustRoot = { source: 'none', tlogs: [], ctlogs: [], certificateAuthorities: [], timestampAuthorities: [] };

/**
 * Parses a sigstore TrustedRoot JSON (`application/vnd.dev.sigstore.trustedroot+json;version=0.1`, the format
 * of cosign's `--trusted-root` and TUF `trusted_root.json`). Problems are `POLICY_INVALID` naming the field.
 */
export function parseTrustRoot(json: unknown, source: string): TrustRoot {
  const fail = (field: string, what: string): never => {
    throw new PromoteError('POLICY_INVALID', `${source}: trusted root ${field}: ${what}`);
  };
  if (!isRecord(json)) return fail('(document)', 'must be a JSON object');
  const mediaType = json['mediaType'];
  if (typeof mediaType !== 'string' || !mediaType.startsWith('application/vnd.dev.sigstore.trustedroot')) {
    fail('mediaType', `expected application/vnd.dev.sigstore.trustedroot+json;version=0.1, got ${JSON.stringify(mediaType)}`);
  }
  const list = (field: string): unknown[] => {
    const v = json[field];
    if (v === undefined) return [];
    if (!Array.isArray(v)) return fail(field, 'must be an array');
    return v;
  };
  const logs = (field: string): LogKey[] =>
    list(field).map((entry, i) => {
      const at = `${field}[${i}]`;
      if (!isRecord(entry) || !isRecord(entry['publicKey'])) return fail(at, 'missing publicKey');
      const pk = entry['publicKey'];
      const raw = base64(pk['rawBytes'], `${at}.publicKey.rawBytes`, fail);
      const details = typeof pk['keyDetails'] === 'string' ? pk['keyDetails'] : '';
      let key: KeyObject;
      try {
        key = createPublicKey({ key: raw, format: 'der', type: details.startsWith('PKCS1_') ? 'pkcs1' : 'spki' });
      } catch (e) {
        return fail(`${at}.publicKey.rawBytes`, `not a public key (${(e as Error).message})`);
      }
      const idHolder = isRecord(entry['checkpointKeyId']) ? entry['checkpointKeyId'] : entry['logId'];
      if (!isRecord(idHolder)) return fail(`${at}.logId`, 'missing');
      const logId = base64(idHolder['keyId'], `${at}.logId.keyId`, fail);
      return {
        logId,
        baseUrl: typeof entry['baseUrl'] === 'string' ? entry['baseUrl'] : '',
        key,
        spki: key.export({ format: 'der', type: 'spki' }),
        validFor: validity(pk['validFor'], `${at}.publicKey.validFor`, fail),
      };
    });
  const authorities = (field: string): CertificateAuthority[] =>
    list(field).map((entry, i) => {
      const at = `${field}[${i}]`;
      if (!isRecord(entry) || !isRecord(entry['certChain']) || !Array.isArray(entry['certChain']['certificates'])) {
        return fail(`${at}.certChain.certificates`, 'missing');
      }
      const certs = entry['certChain']['certificates'].map((c: unknown, j: number) => {
        const der = base64(isRecord(c) ? c['rawBytes'] : undefined, `${at}.certChain.certificates[${j}].rawBytes`, fail);
        try {
          return X509Certificate.parse(der);
        } catch (e) {
          return fail(`${at}.certChain.certificates[${j}]`, `not an X.509 certificate (${(e as Error).message})`);
        }
      });
      if (certs.length === 0) return fail(`${at}.certChain.certificates`, 'is empty');
      return { certChain: certs, validFor: validity(entry['validFor'], `${at}.validFor`, fail) };
    });
  return {
    source,
    tlogs: logs('tlogs'),
    ctlogs: logs('ctlogs'),
    certificateAuthorities: authorities('certificateAuthorities'),
    timestampAuthorities: authorities('timestampAuthorities'),
  };
}

function base64(v: unknown, field: string, fail: (field: string, what: string) => never): Buffer<ArrayBuffer> {
  if (typeof v !== 'string' || v.length === 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) return fail(field, 'must be a base64 string');
  return Buffer.from(v, 'base64');
}

function validity(v: unknown, field: string, fail: (field: string, what: string) => never): { start: Date; end: Date } {
  if (v === undefined) return { start: BEGINNING, end: END };
  if (!isRecord(v)) return fail(field, 'must be an object');
  const date = (x: unknown, name: string, dflt: Date): Date => {
    if (x === undefined) return dflt;
    const d = typeof x === 'string' ? new Date(x) : new Date(NaN);
    if (Number.isNaN(d.getTime())) return fail(`${field}.${name}`, 'must be an RFC 3339 date');
    return d;
  };
  return { start: date(v['start'], 'start', BEGINNING), end: date(v['end'], 'end', END) };
}

/** Reads a trusted-root JSON file. */
export async function loadTrustRoot(path: string): Promise<TrustRoot> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new PromoteError('POLICY_INVALID', `${path}: cannot read the trusted root (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
  }
  const parsed = parseStrictJson(text);
  if (!parsed.ok) throw new PromoteError('POLICY_INVALID', `${path}: trusted root is not valid JSON (${parsed.error})`);
  return parseTrustRoot(parsed.value, path);
}

/**
 * Trust material holding only a Rekor log key from a PEM (cosign's `SIGSTORE_REKOR_PUBLIC_KEY`): the log
 * id is sha256 of its DER SPKI, valid at every time.
 */
export function rekorKeyTrustRoot(pem: string, source: string): TrustRoot {
  const k = parsePublicKey(pem, source);
  if (!k.algorithm.startsWith('ecdsa')) throw new PromoteError('KEY_INVALID', `${source}: a Rekor log key must be ECDSA`);
  return { ...EMPTY_TRUST_ROOT, source, tlogs: [{ logId: sha256(k.spki), baseUrl: '', key: k.key, spki: k.spki, validFor: { start: BEGINNING, end: END } }] };
}

/** Several trust roots as one (for example a trusted root plus an extra Rekor key). */
export function mergeTrustRoots(roots: readonly TrustRoot[]): TrustRoot {
  if (roots.length === 1 && roots[0] !== undefined) return roots[0];
  return {
    source: roots.map((r) => r.source).join(', ') || 'none',
    tlogs: roots.flatMap((r) => r.tlogs),
    ctlogs: roots.flatMap((r) => r.ctlogs),
    certificateAuthorities: roots.flatMap((r) => r.certificateAuthorities),
    timestampAuthorities: roots.flatMap((r) => r.timestampAuthorities),
  };
}
