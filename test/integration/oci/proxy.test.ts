import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RegistryClient, RegistryClientOptions } from '../../../src/oci/index.js';
import { ConnectProxy } from '../../support/connect-proxy.js';
import { selfSignedCertificate } from '../../support/openssl.js';
import { TEST_MANIFEST, fakeRegistryHarness } from '../../unit/oci/fake-registry-harness.js';

const MANIFEST = TEST_MANIFEST;
const { cleanup, fake, client: clientFor } = fakeRegistryHarness({ client: { retry: { maxAttempts: 1 } }, seedManifest: true });

async function proxy(): Promise<ConnectProxy> {
  const p = await ConnectProxy.start();
  cleanup(() => p.close());
  return p;
}

/** A fake registry serving HTTPS with a fresh self-signed certificate (`certFile`). */
async function tlsFake(): Promise<{ f: Awaited<ReturnType<typeof fake>>; certFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'proxy-tls-'));
  cleanup(() => rm(dir, { recursive: true, force: true }));
  const { certFile, keyFile } = await selfSignedCertificate(dir, 'registry', { cn: 'localhost', subjectAltName: 'IP:127.0.0.1' });
  return { f: await fake({ tls: { cert: await readFile(certFile), key: await readFile(keyFile) } }), certFile };
}

/** Clears every proxy variable for this test (restored afterwards), then sets `vars`. */
function proxyEnv(vars: Record<string, string>): void {
  const saved = { ...process.env };
  cleanup(async () => void Object.assign(process.env, saved));
  for (const k of ['http_proxy', 'https_proxy', 'no_proxy', 'NO_PROXY', 'HTTP_PROXY', 'HTTPS_PROXY']) delete process.env[k];
  Object.assign(process.env, vars);
}

function client(options: RegistryClientOptions): RegistryClient {
  return clientFor([], options);
}

describe('RegistryClient behind a proxy', () => {
  it('when HTTPS_PROXY is set, tunnels to an HTTPS registry with CONNECT (reads and writes)', async () => {
    const { f, certFile } = await tlsFake();
    const p = await proxy();
    const c = client({ caFile: certFile, proxy: { httpsProxy: p.url } });
    const raw = await c.getManifest({ registry: f.host, repository: 'app', tag: 'v1' });
    expect(raw.bytes.equals(MANIFEST)).toBe(true);
    await c.pushBlob({ registry: f.host, repository: 'app' }, Buffer.from('through the tunnel'));
    expect(p.requests.filter((r) => r.method === 'CONNECT').map((r) => r.target)).toEqual([f.host, f.host]); // one per pool
  });

  it('when HTTP_PROXY is set, sends plain-HTTP registry requests through it, and none for hosts in NO_PROXY', async () => {
    const f = await fake();
    const p = await proxy();
    const viaProxy = client({ insecure: [f.host], proxy: { httpProxy: p.url } });
    expect((await viaProxy.getManifest({ registry: f.host, repository: 'app', tag: 'v1' })).bytes.equals(MANIFEST)).toBe(true);
    expect(p.requests.map((r) => `${r.method} ${r.target}`)).toEqual([`GET http://${f.host}/v2/app/manifests/v1`]);

    const bypass = client({ insecure: [f.host], proxy: { httpProxy: p.url, noProxy: 'example.com,127.0.0.1' } });
    await bypass.getManifest({ registry: f.host, repository: 'app', tag: 'v1' });
    expect(p.requests).toHaveLength(1);
  });

  it('reads HTTP_PROXY and NO_PROXY from the environment by default', async () => {
    const f = await fake();
    const p = await proxy();
    const saved = { ...process.env };
    cleanup(async () => void Object.assign(process.env, saved));
    for (const k of ['http_proxy', 'https_proxy', 'no_proxy', 'NO_PROXY', 'HTTPS_PROXY']) delete process.env[k];
    process.env['HTTP_PROXY'] = p.url;
    const c = client({ insecure: [f.host] });
    delete process.env['HTTP_PROXY'];
    await c.getManifest({ registry: f.host, repository: 'app', tag: 'v1' });
    expect(p.requests).toHaveLength(1);
  });

  it('prefers http_proxy and no_proxy to their upper-case forms, and options to the environment', async () => {
    const f = await fake();
    const [lower, upper, option] = [await proxy(), await proxy(), await proxy()];
    proxyEnv({ http_proxy: lower.url, HTTP_PROXY: upper.url });
    const read = async (options: RegistryClientOptions = {}) => void (await client({ insecure: [f.host], ...options }).getManifest({ registry: f.host, repository: 'app', tag: 'v1' }));
    await read();
    expect([lower.requests.length, upper.requests.length]).toEqual([1, 0]);
    await read({ proxy: { httpProxy: option.url } });
    expect([lower.requests.length, upper.requests.length, option.requests.length]).toEqual([1, 0, 1]);
    Object.assign(process.env, { no_proxy: '127.0.0.1', NO_PROXY: 'example.com' });
    await read();
    expect([lower.requests.length, upper.requests.length]).toEqual([1, 0]);
    await read({ proxy: { noProxy: 'example.com' } });
    expect(lower.requests.length).toBe(2);
  });

  it('when only HTTP_PROXY is set, tunnels to an HTTPS registry through it as well', async () => {
    const { f, certFile } = await tlsFake();
    const p = await proxy();
    proxyEnv({ HTTP_PROXY: p.url });
    await client({ caFile: certFile }).getManifest({ registry: f.host, repository: 'app', tag: 'v1' });
    expect(p.requests.map((r) => `${r.method} ${r.target}`)).toEqual([`CONNECT ${f.host}`]);
  });
});
