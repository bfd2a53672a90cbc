import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistry, passwordEnvSuffix, registryUsage } from '../../../src/cli/registry-flags.js';
import type { CliIo } from '../../../src/cli/io.js';
import { silentLogger } from '../../../src/log.js';
import type { RegistryClient } from '../../../src/oci/index.js';
import { FakeRegistry } from '../../unit/oci/fake-registry.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fake(username: string, password: string): Promise<FakeRegistry> {
  const f = await FakeRegistry.start({ auth: 'basic', username, password });
  cleanups.push(() => f.close());
  return f;
}

function io(env: Record<string, string>, stdin = ''): CliIo {
  return { stdout: new PassThrough(), stderr: new PassThrough(), stdin: Readable.from([stdin]), env };
}

async function registry(flags: string[], env: Record<string, string>, insecure: string[], stdin?: string): Promise<RegistryClient> {
  const values = { 'registry-username': flags, 'registry-insecure': insecure, ...(stdin !== undefined && { 'registry-password-stdin': true }) };
  const r = await createRegistry(values, io(env, stdin), silentLogger());
  cleanups.push(() => r.close());
  return r;
}

const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

describe('--registry-username HOST=USER', () => {
  it('when scoped per host, sends each registry its own credentials (passwords from per-host variables) and others none', async () => {
    const a = await fake('alice', 'pa');
    const b = await fake('bob', 'pb');
    const other = await fake('x', 'y');
    const env = { [`BUNDLE_PROMOTER_REGISTRY_PASSWORD_${passwordEnvSuffix(a.host)}`]: 'pa', [`BUNDLE_PROMOTER_REGISTRY_PASSWORD_${passwordEnvSuffix(b.host)}`]: 'pb', DOCKER_CONFIG: '/nonexistent' };
    const r = await registry([`${a.host}=alice`, `${b.host}=bob`], env, [a.host, b.host, other.host]);
    expect(await r.listTags({ registry: a.host, repository: 'app' })).toBeUndefined();
    expect(await r.listTags({ registry: b.host, repository: 'app' })).toBeUndefined();
    await expect(r.listTags({ registry: other.host, repository: 'app' })).rejects.toMatchObject({ code: 'REGISTRY_UNAUTHORIZED' });
    expect(a.seen.at(-1)?.headers.authorization).toBe(basic('alice', 'pa'));
    expect(b.seen.at(-1)?.headers.authorization).toBe(basic('bob', 'pb'));
    expect(other.seen.every((s) => s.headers.authorization === undefined)).toBe(true);
  });

  it('reads one HOST=PASSWORD line per host from --registry-password-stdin', async () => {
    const a = await fake('alice', 'p=a');
    const b = await fake('bob', 'pb');
    const r = await registry([`${a.host}=alice`, `${b.host}=bob`], { DOCKER_CONFIG: '/nonexistent' }, [a.host, b.host], `${a.host}=p=a\n${b.host}=pb\n`);
    await r.listTags({ registry: a.host, repository: 'app' });
    await r.listTags({ registry: b.host, repository: 'app' });
    expect(a.seen.at(-1)?.headers.authorization).toBe(basic('alice', 'p=a'));
    expect(b.seen.at(-1)?.headers.authorization).toBe(basic('bob', 'pb'));
  });

  it('refuses a scoped user without a password, naming the variable to set', async () => {
    await expect(createRegistry({ 'registry-username': ['ghcr.io=me'] }, io({}), silentLogger())).rejects.toThrow(/BUNDLE_PROMOTER_REGISTRY_PASSWORD_GHCR_IO/);
  });

  it('documents the scoped form in the usage text', () => {
    expect(registryUsage).toContain('--registry-username HOST=USER');
    expect(registryUsage).toContain('BUNDLE_PROMOTER_REGISTRY_PASSWORD_<HOST>');
  });
});
