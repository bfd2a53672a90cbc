import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** PEM files of a freshly generated self-signed certificate. */
export interface CertificateFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

export interface SelfSignedOptions {
  /** Subject common name. */
  readonly cn: string;
  /** `subjectAltName` value, e.g. `DNS:localhost,IP:127.0.0.1`. @defaultValue none */
  readonly subjectAltName?: string;
}

/**
 * Generates an RSA-2048 key and a self-signed certificate valid for 2 days with `openssl req -x509`
 * (the recipe of registry-behaviour.md §5.2 and §6), writing `<name>-cert.pem` and `<name>-key.pem` into `dir`.
 */
export async function selfSignedCertificate(dir: string, name: string, options: SelfSignedOptions): Promise<CertificateFiles> {
  const certFile = join(dir, `${name}-cert.pem`);
  const keyFile = join(dir, `${name}-key.pem`);
  const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout', keyFile, '-out', certFile];
  args.push('-subj', `/CN=${options.cn}`);
  if (options.subjectAltName !== undefined) args.push('-addext', `subjectAltName=${options.subjectAltName}`);
  await run('openssl', args);
  return { certFile, keyFile };
}
