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
  const fail = (problem: string): BodyCheck => ({ ok: false, problem });
  const raw = decodeBase64Lenient(bodyB64);
  if (raw === undefined) return fail('tlog body is not base64');
  const parsed = parseStrictJson(raw.toString('utf8'));
  if (!parsed.ok || !isRecord(parsed.value)) return fail('tlog body is not a JSON object');
  const body = parsed.value;
  const kind = body['kind'];
  const version = body['apiVersion'];
  const spec = body['spec'];
  if (!isRecord(spec)) return fail('tlog body has no spec');
  const facts = bodyFacts(`${String(kind)}/${String(version)}`, spec);
  if (typeof facts === 'string') return fail(facts);
  const hashOk = facts.hashes.some((h) => h.algorithm === 'sha256' && h.value === subject.hashHex)
    || (subject.payloadHashHex !== undefined && facts.payloadHashes.some((h) => h.algorithm === 'sha256' && h.value === subject.payloadHashHex));
  if (!hashOk) return fail('tlog body hash does not match the signed content');
  if (subject.signature !== undefined) {
    const sigOk = facts.signatures.some((s) => {
      const decoded = decodeBase64Lenient(s);
      return decoded !== undefined && decoded.equals(subject.signature as Buffer);
    });
    if (!sigOk) return fail('tlog body signature differs from the layer signature');
  }
  const keyOk = facts.keys.some((k) => {
    const pem = decodeBase64Lenient(k);
    if (pem === undefined) return false;
    return pemBlocks(pem.toString('utf8')).some((b) => subject.keyDer.some((d) => d.equals(b.der)));
  });
  if (!keyOk) return fail('tlog body key is not the verifying key');
  return { ok: true, kind: `${String(kind)}/${String(version)}` };
}

interface BodyFacts {
  hashes: { algorithm: unknown; value: unknown }[];
  payloadHashes: { algorithm: unknown; value: unknown }[];
  /** Base64 signatures. */
  signatures: string[];
  /** Base64 PEM keys or certificates. */
  keys: string[];
}

function bodyFacts(kindVersion: string, spec: Record<string, unknown>): BodyFacts | string {
  const rec = (v: unknown): Record<string, unknown> => (isRecord(v) ? v : {});
  const str = (v: unknown): string[] => (typeof v === 'string' ? [v] : []);
  const hash = (v: unknown): { algorithm: unknown; value: unknown }[] => (isRecord(v) ? [{ algorithm: v['algorithm'], value: v['value'] }] : []);
  switch (kindVersion) {
    case 'hashedrekord/0.0.1':
    case 'rekord/0.0.1': {
      const sig = rec(spec['signature']);
      return { hashes: hash(rec(spec['data'])['hash']), payloadHashes: [], signatures: str(sig['content']), keys: str(rec(sig['publicKey'])['content']) };
    }
    case 'intoto/0.0.2': {
      const content = rec(spec['content']);
      const sigs = Array.isArray(rec(content['envelope'])['signatures']) ? (rec(content['envelope'])['signatures'] as unknown[]) : [];
      return {
        hashes: hash(content['hash']),
        payloadHashes: hash(content['payloadHash']),
        signatures: sigs.flatMap((s) => str(rec(s)['sig'])),
        keys: sigs.flatMap((s) => str(rec(s)['publicKey'])),
      };
    }
    case 'intoto/0.0.1': {
      const content = rec(spec['content']);
      return { hashes: hash(content['hash']), payloadHashes: hash(content['payloadHash']), signatures: [], keys: str(spec['publicKey']) };
    }
    case 'dsse/0.0.1': {
      const sigs = Array.isArray(spec['signatures']) ? (spec['signatures'] as unknown[]) : [];
      return {
        hashes: hash(spec['envelopeHash']),
        payloadHashes: hash(spec['payloadHash']),
        signatures: sigs.flatMap((s) => str(rec(s)['signature'])),
        keys: sigs.flatMap((s) => str(rec(s)['verifier'])),
      };
    }
    default:
      return `unsupported tlog entry kind ${kindVersion}`;
  }
}
