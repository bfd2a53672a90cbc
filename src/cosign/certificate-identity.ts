/**
 * What a keyless (Fulcio) leaf certificate says about its holder, read as cosign reads it
 * (`pkg/cosign/verify.go` `CheckCertificatePolicy`, `getSubjectAlternateNames`): every subject alternative
 * name, and the extended key usage. `@sigstore/verify` matches only the first URI or email SAN and does not
 * look at the EKU, so both are checked here.
 */
import { X509Certificate } from '@sigstore/core';
import type { KeylessIdentity } from './policy.js';

/** id-kp-codeSigning. */
export const CODE_SIGNING_EKU = '1.3.6.1.5.5.7.3.3';
const EXT_KEY_USAGE_OID = '2.5.29.37';
const SAN_OID = '2.5.29.17';

export type IdentityMatch = { ok: true; subjectAlternativeName: string } | { ok: false; detail: string };

/** Every SAN as cosign lists them: DNS names, emails, IP addresses, URIs, and otherName values (Fulcio usernames). */
export function subjectAlternativeNames(cert: X509Certificate): string[] {
  const ext = cert.extension(SAN_OID);
  if (ext === undefined) return [];
  const out: string[] = [];
  for (const gn of ext.valueObj.subs[0]?.subs ?? []) {
    if (gn.tag.isContextSpecific(0x01) || gn.tag.isContextSpecific(0x02) || gn.tag.isContextSpecific(0x06)) out.push(gn.value.toString('ascii'));
    else if (gn.tag.isContextSpecific(0x07)) out.push(formatIp(gn.value));
    else if (gn.tag.isContextSpecific(0x00)) {
      const value = gn.subs[1]?.subs[0]?.value;
      if (value !== undefined) out.push(value.toString('utf8'));
    }
  }
  return out;
}

/** The certificate's extended key usages (OIDs); empty when the extension is absent. */
export function extendedKeyUsages(cert: X509Certificate): string[] {
  const ext = cert.extension(EXT_KEY_USAGE_OID);
  if (ext === undefined) return [];
  return (ext.valueObj.subs[0]?.subs ?? []).map((o) => o.toOID());
}

/**
 * Decision (docs/verification.md#keyless): the leaf must name code signing in its EKU (Fulcio always does;
 * a certificate from the same CA for another purpose must not sign images), and the identity matches when
 * **any** SAN matches, as in cosign. `identityRegExp` is unanchored, like Go's `regexp.MatchString`.
 */
export function matchKeylessIdentity(leafDer: Buffer, id: KeylessIdentity): IdentityMatch {
  let cert: X509Certificate;
  try {
    cert = X509Certificate.parse(leafDer as Buffer<ArrayBuffer>);
  } catch (e) {
    return { ok: false, detail: `unreadable certificate (${(e as Error).message})` };
  }
  let ekus: string[];
  let sans: string[];
  try {
    ekus = extendedKeyUsages(cert);
    sans = subjectAlternativeNames(cert);
  } catch (e) {
    return { ok: false, detail: `unreadable certificate extensions (${(e as Error).message})` };
  }
  if (!ekus.includes(CODE_SIGNING_EKU)) return { ok: false, detail: `certificate is not for code signing (extended key usage ${ekus.length === 0 ? 'absent' : ekus.join(', ')})` };
  const san = sans.find((s) => (id.identity !== undefined ? s === id.identity : id.identityRegExp?.test(s) === true));
  if (san === undefined) {
    const want = id.identity ?? String(id.identityRegExp);
    return { ok: false, detail: `no certificate identity [${sans.join(', ')}] ${id.identity === undefined ? 'matches' : 'is'} ${want}` };
  }
  return { ok: true, subjectAlternativeName: san };
}

function formatIp(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i + 1 < b.length; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}
