import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPromoteError } from '../../../src/errors.js';
import { DockerConfigKeychain, chainKeychains, readDockerConfig, staticKeychain } from '../../../src/oci/index.js';

let dir: string;
let env: NodeJS.ProcessEnv;

/**
 * A fake `docker-credential-test`: answers for `helper.example` and `https://index.docker.io/v1/`, says
 * "credentials not found" for `missing.example`, fails for anything else; records the server URL it got.
 */
const HELPER = `#!/bin/sh
[ "$1" = get ] || exit 3
read -r server
printf '%s' "$server" > "$(dirname "$0")/last-server"
case "$server" in
  helper.example) printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret"}' "$server" ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-token"}' "$server" ;;
  missing.example) echo "credentials not found in native keychain"; exit 1 ;;
  *) echo "boom: keychain locked" >&2; exit 1 ;;
esac
`;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bp-docker-config-'));
  await writeFile(join(dir, 'docker-credential-test'), HELPER);
  await chmod(join(dir, 'docker-credential-test'), 0o755);
  env = { ...process.env, PATH: `${dir}${delimiter}${process.env['PATH'] ?? ''}`, DOCKER_CONFIG: dir };
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function config(json: unknown): Promise<DockerConfigKeychain> {
  await writeFile(join(dir, 'config.json'), typeof json === 'string' ? json : JSON.stringify(json));
  return new DockerConfigKeychain({ env });
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('DockerConfigKeychain', () => {
  describe('when auths holds inline credentials', () => {
    it('decodes auth as user:password (password may contain colons)', async () => {
      const kc = await config({ auths: { 'ghcr.io': { auth: b64('me:pa:ss') } } });
      expect(await kc.resolve('ghcr.io')).toEqual({ username: 'me', password: 'pa:ss' });
    });
    it('reads username/password and identitytoken fields', async () => {
      const kc = await config({ auths: { 'a.example': { username: 'u', password: 'p' }, 'b.example': { identitytoken: 'idt' } } });
      expect(await kc.resolve('a.example')).toEqual({ username: 'u', password: 'p' });
      expect(await kc.resolve('b.example')).toEqual({ identityToken: 'idt' });
    });
    it('matches keys with https:// and a path, and Docker Hub aliases', async () => {
      const kc = await config({ auths: { 'https://index.docker.io/v1/': { auth: b64('hub:pw') }, 'https://reg.example:5000': { auth: b64('r:p') } } });
      expect(await kc.resolve('index.docker.io')).toEqual({ username: 'hub', password: 'pw' });
      expect(await kc.resolve('docker.io')).toEqual({ username: 'hub', password: 'pw' });
      expect(await kc.resolve('reg.example:5000')).toEqual({ username: 'r', password: 'p' });
    });
    it('answers undefined for an unknown registry', async () => {
      const kc = await config({ auths: { 'ghcr.io': { auth: b64('a:b') } } });
      expect(await kc.resolve('quay.io')).toBeUndefined();
    });
    it('refuses a malformed auth value without echoing it', async () => {
      const kc = await config({ auths: { 'ghcr.io': { auth: b64('no-colon-secret') } } });
      const e = await kc.resolve('ghcr.io').catch((x: unknown) => x);
      expect(isPromoteError(e, 'INVALID_CONFIG')).toBe(true);
      expect((e as Error).message).toContain('ghcr.io');
      expect((e as Error).message).not.toContain('no-colon-secret');
    });
  });

  describe('when a credential helper is configured', () => {
    it('runs docker-credential-<name> get with the server URL on stdin (credHelpers)', async () => {
      const kc = await config({ credHelpers: { 'helper.example': 'test' } });
      expect(await kc.resolve('helper.example')).toEqual({ username: 'helper-user', password: 'helper-secret' });
    });
    it('uses credsStore for Docker Hub with the v1 server URL and maps <token> to an identity token', async () => {
      const kc = await config({ credsStore: 'test', auths: { 'https://index.docker.io/v1/': {} } });
      expect(await kc.resolve('index.docker.io')).toEqual({ identityToken: 'refresh-token' });
    });
    it('treats "credentials not found" as no credential and falls back to auths', async () => {
      const kc = await config({ credsStore: 'test', auths: { 'missing.example': { auth: b64('x:y') } } });
      expect(await kc.resolve('missing.example')).toEqual({ username: 'x', password: 'y' });
    });
    it('reports a failing helper as CREDENTIAL_HELPER_FAILED naming it', async () => {
      const kc = await config({ credHelpers: { 'broken.example': 'test' } });
      const e = await kc.resolve('broken.example').catch((x: unknown) => x);
      expect(isPromoteError(e, 'CREDENTIAL_HELPER_FAILED')).toBe(true);
      expect((e as Error).message).toContain('docker-credential-test');
      expect((e as Error).message).toContain('keychain locked');
    });
    it('reports a helper missing from PATH', async () => {
      const kc = await config({ credHelpers: { 'x.example': 'nonexistent' } });
      const e = await kc.resolve('x.example').catch((x: unknown) => x);
      expect(isPromoteError(e, 'CREDENTIAL_HELPER_FAILED')).toBe(true);
      expect((e as Error).message).toContain('docker-credential-nonexistent was not found on PATH');
    });
  });

  describe('when the config file is missing or broken', () => {
    it('resolves nothing for a missing file', async () => {
      const kc = new DockerConfigKeychain({ path: join(dir, 'nope.json'), env });
      expect(await kc.resolve('ghcr.io')).toBeUndefined();
    });
    it('reports invalid JSON as INVALID_CONFIG naming the file', async () => {
      await writeFile(join(dir, 'config.json'), '{ nope');
      const e = await readDockerConfig(join(dir, 'config.json')).catch((x: unknown) => x);
      expect(isPromoteError(e, 'INVALID_CONFIG')).toBe(true);
      expect((e as Error).message).toContain(join(dir, 'config.json'));
    });
  });
});

describe('staticKeychain and chainKeychains', () => {
  it('limits static credentials to the given hosts and lets the chain fall through', async () => {
    const kc = chainKeychains(staticKeychain({ username: 'a', password: 'b' }, { hosts: ['docker.io'] }), staticKeychain({ registryToken: 'rt' }));
    expect(await kc.resolve('index.docker.io')).toEqual({ username: 'a', password: 'b' });
    expect(await kc.resolve('ghcr.io')).toEqual({ registryToken: 'rt' });
  });
});

describe('DockerConfigKeychain.forget', () => {
  it('when the config file was rewritten (docker login again), reads it afresh on the next resolve', async () => {
    const auth = (p: string) => ({ auths: { 'r.example': { auth: Buffer.from(`u:${p}`).toString('base64') } } });
    const keychain = await config(auth('old'));
    expect(await keychain.resolve('r.example')).toEqual({ username: 'u', password: 'old' });
    await writeFile(join(dir, 'config.json'), JSON.stringify(auth('new')));
    expect(await keychain.resolve('r.example')).toEqual({ username: 'u', password: 'old' });
    chainKeychains(keychain).forget?.('r.example');
    expect(await keychain.resolve('r.example')).toEqual({ username: 'u', password: 'new' });
  });
});
