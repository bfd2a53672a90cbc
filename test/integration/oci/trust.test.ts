import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { anonymousKeychain, DEFAULT_RETRY_POLICY, MediaTypes, RegistryClient, type RegistryClientOptions } from '../../../src/oci/index.js';
import { RegistryTransport } from '../../../src/oci/registry-transport.js';
import { rejectionOf } from '../../support/failure.js';
import { selfSignedCertificate, type CertificateFiles } from '../../support/openssl.js';
import { FakeRegistry, type FakeRegistryOptions } from '../../unit/oci/fake-registry.js';

const MANIFEST = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: { mediaType: MediaTypes.ociConfig, digest: `sha256:${'1'.repeat(64)}`, size: 2 }, layers: [] }));

let dir = '';
let server: CertificateFiles;
let clientCert: CertificateFiles;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trust-'));
  server = await selfSignedCertificate(dir, 'server', { cn: 'localhost', subjectAltName: 'IP:127.0.0.1' });
  clientCert = await selfSignedCertificate(dir, 'client', { cn: 'bundle-promoter-client' });
  return () => rm(dir, { recursive: true, force: true });
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tlsFake(extra: Partial<NonNullable<FakeRegistryOptions['tls']>> = {}): Promise<FakeRegistry> {
  const f = await FakeRegistry.start({ tls: { cert: await readFile(server.certFile), key: await readFile(server.keyFile), ...extra } });
  cleanups.push(() => f.close());
  f.putManifest('app', 'v1', MANIFEST, MediaTypes.ociManifest);
  return f;
}

function client(options: RegistryClientOptions): RegistryClient {
  const c = new RegistryClient({ retry: { maxAttempts: 1 }, proxy: false, ...options });
  cleanups.push(() => c.close());
  return c;
}

/** A certs.d root holding `<host>/<name>` copies of the given files. */
async function certsD(host: string, files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(dir, 'certs.d-'));
  await mkdir(join(root, host));
  for (const [name, from] of Object.entries(files)) await copyFile(from, join(root, host, name));
  return root;
}

describe('TLS trust', () => {
  it('when <certs.d>/<host:port>/ca.crt holds the registry CA, trusts it without --registry-ca-cert-path', async () => {
    const f = await tlsFake();
    const ref = { registry: f.host, repository: 'app', tag: 'v1' };
    expect((await rejectionOf(client({ certsDirs: [] }).getManifest(ref))).code).toBe('TLS_CONFIG');
    const root = await certsD(f.host, { 'ca.crt': server.certFile });
    expect((await client({ certsDirs: ['/nonexistent', root] }).getManifest(ref)).bytes.equals(MANIFEST)).toBe(true);
  });

  it('when <certs.d>/<host:port>/ holds client.cert and client.key, presents them to a registry that wants mTLS', async () => {
    const f = await tlsFake({ ca: await readFile(clientCert.certFile), requestCert: true });
    const ref = { registry: f.host, repository: 'app', tag: 'v1' };
    const caOnly = await certsD(f.host, { 'ca.crt': server.certFile });
    await expect(client({ certsDirs: [caOnly] }).getManifest(ref)).rejects.toBeDefined();
    const withClient = await certsD(f.host, { 'ca.crt': server.certFile, 'client.cert': clientCert.certFile, 'client.key': clientCert.keyFile });
    expect((await client({ certsDirs: [withClient] }).getManifest(ref)).bytes.equals(MANIFEST)).toBe(true);
  });

  it('refuses a client certificate without its key as TLS_CONFIG', async () => {
    const f = await tlsFake();
    const root = await certsD(f.host, { 'client.cert': clientCert.certFile });
    expect((await rejectionOf(client({ certsDirs: [root] }).getManifest({ registry: f.host, repository: 'app', tag: 'v1' }))).code).toBe('TLS_CONFIG');
  });

  it('trusts the operating system store besides Node\'s roots', async () => {
    const f = await tlsFake();
    const pem = await readFile(server.certFile, 'utf8');
    const transport = (systemCa?: () => string[]) => {
      const t = new RegistryTransport({
        keychain: anonymousKeychain, insecure: [], caFile: undefined, connectionsPerRegistry: 2, retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: 1 },
        timeouts: { connectMs: 5_000, headersMs: 5_000, bodyMs: 5_000, commitMs: 5_000 }, userAgent: 'test', logger: undefined, onRequest: undefined, observer: undefined,
        ...(systemCa !== undefined && { systemCa }),
      });
      cleanups.push(() => t.close());
      return t;
    };
    const call = { kind: 'GET manifest', method: 'GET', registry: f.host, url: '/v2/', accept: [200], subject: { method: 'GET', registry: f.host, what: 'ping' } } as const;
    expect((await rejectionOf(transport().request(call))).code).toBe('TLS_CONFIG');
    expect((await transport(() => [pem]).request(call)).status).toBe(200);
  });
});
