import { verify } from 'node:crypto';
import { json as sigstoreJson } from '@sigstore/core';
import { decodeBase64Lenient, isRecord } from './encoding.js';
import { pemBlocks } from './public-key.js';
import { parseStrictJson } from './strict-json.js';
import type { LogKey, TrustRoot } from './trust-root.js';

/** The legacy `dev.sigstore.cosign/bundle` layer annotation, parsed. */
export interface RekorBundle {
  readonly signedEntryTimestamp: Buffer;
  /** Base64 of the canonicalized entry, exactly as stored (the SET covers this string). */
  readonly body: string;
  readonly integratedTime: number;
  readonly logIndex: number;
  /** Hex sha256 of the log's DER SPKI. */
  readonly logId: string;
}

export interface RekorEvidence {
  readonly integratedTime: number;
  readonly logIndex: number;
  readonly logId: string;
  readonly kind: string;
}

export type TlogOutcome = { ok: true; evidence: RekorEvidence } | { ok: false; detail: string };

/** What the entry must be about. */
export interface TlogSubject {
  /** sha256 hex that the entry's hash must equal: of the payload (signatures) or the layer bytes (attestations). */
  readonly hashHex: string;
  /** For attestations: sha256 hex of the DSSE payload, accepted where the entry records the payload hash. */
  readonly payloadHashHex?: string;
  /** The decoded signature that the body must carry (signatures only; cosign skips it for attestations). */
  readonly signature?: Buffer;
  /** DER of the verifying key (SPKI) and/or of the layer's certificate: the body key must be byte-equal to one. */
  readonly keyDer: readonly Buffer[];
}

export function parseRekorBundle(annotation: string): RekorBundle | string {
  const parsed = parseStrictJson(annotation);
  if (!parsed.ok) return `bundle annotation is not valid JSON (${parsed.error})`;
  const v = parsed.value;
  if (!isRecord(v) || !isRecord(v['Payload'])) return 'bundle annotation has no Payload object';
  const p = v['Payload'];
  const set = typeof v['SignedEntryTimestamp'] === 'string' ? decodeBase64Lenient(v['SignedEntryTimestamp']) : undefined;
  if (set === undefined || set.length === 0) return 'bundle SignedEntryTimestamp is not base64';
  if (typeof p['body'] !== 'string') return 'bundle payload body is not a string';
  const integratedTime = p['integratedTime'];
  const logIndex = p['logIndex'];
  if (!Number.isSafeInteger(integratedTime) || (integratedTime as number) < 0) return 'bundle integratedTime is not an integer';
  if (!Number.isSafeInteger(logIndex) || (logIndex as number) < 0) return 'bundle logIndex is not an integer';
  const logId = p['logID'];
  if (typeof logId !== 'string' || !/^[0-9a-f]{64}$/.test(logId)) return 'bundle logID is not a sha256 hex string';
  return { signedEntryTimestamp: set, body: p['body'], integratedTime: integratedTime as number, logIndex: logIndex as number, logId };
}

/**
 * Verifies a legacy Rekor bundle (cosign-signatures.md §5): the SET over the JCS canonical form of
 * `{body, integratedTime, logID, logIndex}` with the log key chosen by `logID` and valid at `integratedTime`,
 * then the body: hash, signature (decoded bytes, not base64 strings) and key byte-equality.
 */
export function verifyRekorBundle(annotation: string, trust: TrustRoot, subject: TlogSubject): TlogOutcome {
  const bundle = parseRekorBundle(annotation);
  if (typeof bundle === 'string') return { ok: false, detail: bundle };
  const set = verifySet(bundle, trust.tlogs);
  if (set !== undefined) return { ok: false, detail: set };
  const body = checkBody(bundle.body, subject);
  if (!body.ok) return { ok: false, detail: body.problem };
  return { ok: true, evidence: { integratedTime: bundle.integratedTime, logIndex: bundle.logIndex, logId: bundle.logId, kind: body.kind } };
}

/** Returns a problem, or `undefined` when the SET verifies with a trusted log key valid at integratedTime. */
export function verifySet(bundle: RekorBundle, tlogs: readonly LogKey[]): string | undefined {
  const candidates = tlogs.filter((l) => l.logId.toString('hex') === bundle.logId);
  if (candidates.length === 0) return `no trusted transparency log has id ${bundle.logId}`;
  const at = new Date(bundle.integratedTime * 1000);
  const valid = candidates.filter((l) => l.validFor.start <= at && at <= l.validFor.end);
  if (valid.length === 0) return `log ${bundle.logId} was not trusted at integratedTime ${at.toISOString()}`;
  const canonical = Buffer.from(
    sigstoreJson.canonicalize({ body: bundle.body, integratedTime: bundle.integratedTime, logIndex: bundle.logIndex, logID: bundle.logId }),
    'utf8',
  );
  const ok = valid.some((l) => {
    try {
      return verify('sha256', canonical, { key: l.key, dsaEncoding: 'der' }, bundle.signedEntryTimestamp);
    } catch {
      return false;
    }
  });
  return ok ? undefined : 'signed entry timestamp does not verify with the log key';
}

type BodyCheck = { ok: true; kind: string } | { ok: false; problem: string };

/** Checks the decoded entry body against the layer (cosign `VerifyBundle`): hash, signature, key. */
function checkBody(bodyB64: string, subject: TlogSubject): BodyCheck {
  const raw = decodeBase64Lenient(bodyB64);
  if (raw === undefined) return { ok: false, problem: 'tlog body is not base64' };
  const facts = tlogBodyFacts(raw);
  if (typeof facts === 'string') return { ok: false, problem: facts };
  const hashOk = facts.hashes.some((h) => h.algorithm === 'sha256' && h.value === subject.hashHex)
    || (subject.payloadHashHex !== undefined && facts.payloadHashes.some((h) => h.algorithm === 'sha256' && h.value === subject.payloadHashHex));
  if (!hashOk) return { ok: false, problem: 'tlog body hash does not match the signed content' };
  if (subject.signature !== undefined && !facts.signatures.some((s) => s.equals(subject.signature as Buffer))) {
    return { ok: false, problem: 'tlog body signature differs from the layer signature' };
  }
  if (!bodyHasKey(facts, subject.keyDer)) return { ok: false, problem: 'tlog body key is not the verifying key' };
  return { ok: true, kind: facts.kind };
}

/** True when one key or certificate in the body is byte-equal (DER) to one of `keyDer`. */
export function bodyHasKey(facts: TlogBodyFacts, keyDer: readonly Buffer[]): boolean {
  return facts.keyDers.some((k) => keyDer.some((d) => d.equals(k)));
}

export interface TlogBodyFacts {
  /** `kind/apiVersion`. */
  readonly kind: string;
  readonly hashes: readonly { algorithm: unknown; value: unknown }[];
  readonly payloadHashes: readonly { algorithm: unknown; value: unknown }[];
  /** Decoded signatures. */
  readonly signatures: readonly Buffer[];
  /** DER of every public key (SPKI) or certificate named in the body. */
  readonly keyDers: readonly Buffer[];
}

/**
 * The facts of a Rekor entry body that the verifier compares: hashes, signatures, keys. Rekor v1 kinds
 * (`hashedrekord`, `rekord`, `dsse` 0.0.1, `intoto` 0.0.1/0.0.2) carry base64 PEM keys; Rekor v2 kinds
 * (`hashedrekord`/`dsse` 0.0.2) carry base64 DER.
 */
export function tlogBodyFacts(body: Buffer): TlogBodyFacts | string {
  const parsed = parseStrictJson(body.toString('utf8'));
  if (!parsed.ok || !isRecord(parsed.value)) return 'tlog body is not a JSON object';
  const doc = parsed.value;
  const spec = doc['spec'];
  if (!isRecord(spec)) return 'tlog body has no spec';
  const kind = `${String(doc['kind'])}/${String(doc['apiVersion'])}`;
  const rec = (v: unknown): Record<string, unknown> => (isRecord(v) ? v : {});
  const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const hash = (v: unknown): { algorithm: unknown; value: unknown }[] => (isRecord(v) ? [{ algorithm: v['algorithm'], value: v['value'] }] : []);
  const b64 = (v: unknown): Buffer[] => {
    const d = typeof v === 'string' ? decodeBase64Lenient(v) : undefined;
    return d === undefined ? [] : [d];
  };
  const pemDers = (v: unknown): Buffer[] => b64(v).flatMap((pem) => pemBlocks(pem.toString('utf8')).map((b) => b.der));
  const v2Hash = (v: unknown): { algorithm: unknown; value: unknown }[] =>
    isRecord(v) && typeof v['digest'] === 'string' ? [{ algorithm: v['algorithm'] === 'SHA2_256' ? 'sha256' : v['algorithm'], value: b64(v['digest'])[0]?.toString('hex') }] : [];
  const v2Verifier = (v: unknown): Buffer[] => [...b64(rec(rec(v)['publicKey'])['rawBytes']), ...b64(rec(rec(v)['x509Certificate'])['rawBytes'])];
  switch (kind) {
    case 'hashedrekord/0.0.1':
    case 'rekord/0.0.1': {
      const sig = rec(spec['signature']);
      return { kind, hashes: hash(rec(spec['data'])['hash']), payloadHashes: [], signatures: b64(sig['content']), keyDers: pemDers(rec(sig['publicKey'])['content']) };
    }
    case 'intoto/0.0.2': {
      const content = rec(spec['content']);
      const sigs = arr(rec(content['envelope'])['signatures']);
      return { kind, hashes: hash(content['hash']), payloadHashes: hash(content['payloadHash']), signatures: sigs.flatMap((s) => b64(rec(s)['sig'])), keyDers: sigs.flatMap((s) => pemDers(rec(s)['publicKey'])) };
    }
    case 'intoto/0.0.1': {
      const content = rec(spec['content']);
      return { kind, hashes: hash(content['hash']), payloadHashes: hash(content['payloadHash']), signatures: [], keyDers: pemDers(spec['publicKey']) };
    }
    case 'dsse/0.0.1': {
      const sigs = arr(spec['signatures']);
      return { kind, hashes: hash(spec['envelopeHash']), payloadHashes: hash(spec['payloadHash']), signatures: sigs.flatMap((s) => b64(rec(s)['signature'])), keyDers: sigs.flatMap((s) => pemDers(rec(s)['verifier'])) };
    }
    case 'dsse/0.0.2': {
      const d = rec(spec['dsseV002']);
      const sigs = arr(d['signatures']);
      return { kind, hashes: [], payloadHashes: v2Hash(d['payloadHash']), signatures: sigs.flatMap((s) => b64(rec(s)['content'])), keyDers: sigs.flatMap((s) => v2Verifier(rec(s)['verifier'])) };
    }
    case 'hashedrekord/0.0.2': {
      const h = rec(spec['hashedRekordV002']);
      const sig = rec(h['signature']);
      return { kind, hashes: v2Hash(h['data']), payloadHashes: [], signatures: b64(sig['content']), keyDers: v2Verifier(sig['verifier']) };
    }
    default:
      return `unsupported tlog entry kind ${kind}`;
  }
}
