/** DSSE envelopes and in-toto statements, parsed strictly (signed JSON: no duplicate keys). */
import { dsse } from '@sigstore/core';
import { goJson, sortGoKeys } from '../oci/index.js';
import { decodeBase64Lenient, isRecord } from './encoding.js';
import type { ParsedPayload } from './simple-signing.js';
import { parseStrictJson } from './strict-json.js';

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';
export const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
export const STATEMENT_V01 = 'https://in-toto.io/Statement/v0.1';
/** The predicate type of cosign v3 image signatures. */
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

export interface DsseEnvelope {
  readonly payloadType: string;
  readonly payload: Buffer;
  readonly signatures: readonly { readonly keyid?: string; readonly sig: Buffer }[];
}

/** `DSSEv1 SP len(type) SP type SP len(body) SP body`, the bytes a DSSE signature covers. */
export function preAuthEncoding(payloadType: string, payload: Buffer): Buffer {
  return dsse.preAuthEncoding(payloadType, payload);
}

export function parseEnvelope(bytes: Buffer): ParsedPayload<DsseEnvelope> {
  const parsed = parseStrictJson(bytes.toString('utf8'));
  if (!parsed.ok) return { ok: false, detail: `DSSE envelope: ${parsed.error}` };
  const v = parsed.value;
  if (!isRecord(v)) return { ok: false, detail: 'DSSE envelope is not a JSON object' };
  if (typeof v['payloadType'] !== 'string') return { ok: false, detail: 'DSSE envelope has no payloadType' };
  const payload = typeof v['payload'] === 'string' ? decodeBase64Lenient(v['payload']) : undefined;
  if (payload === undefined) return { ok: false, detail: 'DSSE payload is not base64' };
  if (!Array.isArray(v['signatures']) || v['signatures'].length === 0) return { ok: false, detail: 'DSSE envelope has no signatures' };
  const signatures: { keyid?: string; sig: Buffer }[] = [];
  for (const s of v['signatures']) {
    const sig = isRecord(s) && typeof s['sig'] === 'string' ? decodeBase64Lenient(s['sig']) : undefined;
    if (sig === undefined || sig.length === 0) return { ok: false, detail: 'DSSE signature is not base64' };
    signatures.push(isRecord(s) && typeof s['keyid'] === 'string' ? { keyid: s['keyid'], sig } : { sig });
  }
  return { ok: true, value: { payloadType: v['payloadType'], payload, signatures } };
}

export interface StatementSubject {
  readonly name?: string;
  readonly sha256?: string;
  readonly annotations?: Readonly<Record<string, unknown>>;
}

export interface Statement {
  readonly type: string;
  readonly predicateType: string | undefined;
  readonly subjects: readonly StatementSubject[];
  /** The whole parsed statement, for printing. */
  readonly document: Readonly<Record<string, unknown>>;
}

/** Parses an in-toto statement (v0.1 or v1). `predicate` may be missing (cosign v3 < 3.0.5). */
export function parseStatement(bytes: Buffer): ParsedPayload<Statement> {
  const parsed = parseStrictJson(bytes.toString('utf8'));
  if (!parsed.ok) return { ok: false, detail: `in-toto statement: ${parsed.error}` };
  const v = parsed.value;
  if (!isRecord(v)) return { ok: false, detail: 'in-toto statement is not a JSON object' };
  const type = v['_type'];
  if (type !== STATEMENT_V1 && type !== STATEMENT_V01) return { ok: false, detail: `unsupported in-toto statement type ${JSON.stringify(type)}` };
  if (!Array.isArray(v['subject'])) return { ok: false, detail: 'in-toto statement has no subject list' };
  const subjects: StatementSubject[] = v['subject'].filter(isRecord).map((s) => {
    const digest = isRecord(s['digest']) ? s['digest'] : {};
    const out: { name?: string; sha256?: string; annotations?: Record<string, unknown> } = {};
    if (typeof s['name'] === 'string') out.name = s['name'];
    if (typeof digest['sha256'] === 'string') out.sha256 = digest['sha256'];
    if (isRecord(s['annotations'])) out.annotations = s['annotations'];
    return out;
  });
  const predicateType = v['predicateType'];
  if (predicateType !== undefined && typeof predicateType !== 'string') return { ok: false, detail: 'in-toto predicateType is not a string' };
  return { ok: true, value: { type, predicateType, subjects, document: v } };
}

/**
 * The Statement v1 that cosign v3 signs for an image (§9.2): no subject name, `annotations` only when
 * given, `predicate: {}`. Spacing is ours (protojson's is not stable; verifiers read the stored bytes).
 */
export function serializeSignStatement(digestHex: string, annotations: Readonly<Record<string, string>>): Buffer {
  const subject: Record<string, unknown> = { digest: { sha256: digestHex } };
  if (Object.keys(annotations).length > 0) subject['annotations'] = sortGoKeys(annotations);
  return Buffer.from(goJson({ _type: STATEMENT_V1, subject: [subject], predicateType: COSIGN_SIGN_PREDICATE, predicate: {} }), 'utf8');
}
