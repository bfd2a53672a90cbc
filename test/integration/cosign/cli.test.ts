import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../../src/cli/io.js';
import { run as generateKeyPair } from '../../../src/cli/generate-key-pair-command.js';
import { run as sign } from '../../../src/cli/sign-command.js';
import { run as verify } from '../../../src/cli/verify-command.js';
import { startRegistry, TEST_PASSWORD, TEST_USERNAME, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import { cosignTag, Fixtures, randomLayer, referrersTag, type PushedImage } from '../../support/fixtures.js';
import { FIXTURE_DIR } from '../../unit/cosign/fixture-files.js';

interface Outcome { code: number; stdout: string; stderr: string }

describe('cosign-style CLI commands (verify, sign, generate-key-pair)', () => {
  let registry: TestRegistry;
  let raw: RawClient;
  let fixtures: Fixtures;
  let dir: string;
  let seq = 0;

  /** Runs a command with in-memory streams; registry credentials come from the environment. */
  async function cli(command: (argv: string[], io: CliIo) => Promise<number>, argv: string[], options: { env?: NodeJS.ProcessEnv; stdin?: string } = {}): Promise<Outcome> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (c: Buffer) => (out += c.toString()));
    stderr.on('data', (c: Buffer) => (err += c.toString()));
    const io: CliIo = {
      stdout,
      stderr,
      stdin: Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)]),
      env: { DOCKER_CONFIG: dir, BUNDLE_PROMOTER_REGISTRY_PASSWORD: TEST_PASSWORD, ...options.env },
    };
    const code = await command(argv, io);
    return { code, stdout: out, stderr: err };
  }

  const registryFlags = (): string[] => ['--registry-insecure', registry.host, '--registry-username', TEST_USERNAME];

  async function image(): Promise<{ ref: string; pushed: PushedImage; repoName: string }> {
    seq += 1;
    const repoName = `cli/app${seq}`;
    const pushed = await fixtures.pushImage(repoName, { layers: [await randomLayer(300, `cli-${seq}`)], tag: 'v1' });
    return { ref: `${registry.host}/${repoName}:v1`, pushed, repoName };
  }

  beforeAll(async () => {
    registry = await startRegistry({ auth: 'basic' });
    raw = RawClient.for(registry);
    fixtures = new Fixtures(raw);
    dir = await mkdtemp(join(tmpdir(), 'cosign-cli-'));
    const gen = await cli(generateKeyPair, ['--output-key-prefix', join(dir, 'cosign')], { env: { COSIGN_PASSWORD: 'secret' } });
    expect(gen).toMatchObject({ code: 0 });
  });
  afterAll(async () => {
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  describe('generate-key-pair', () => {
    it('writes cosign.key with mode 0600 and cosign.pub', async () => {
      expect((await stat(join(dir, 'cosign.key'))).mode & 0o777).toBe(0o600);
      expect(await readFile(join(dir, 'cosign.key'), 'utf8')).toMatch(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----/);
      expect(await readFile(join(dir, 'cosign.pub'), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    });

    it('reads the password from stdin and refuses to overwrite', async () => {
      const r = await cli(generateKeyPair, ['--output-key-prefix', join(dir, 'piped'), '--scrypt-n', '32768'], { stdin: 'pw\n' });
      expect(r.code).toBe(0);
      expect(r.stderr).toContain(`Private key written to ${join(dir, 'piped.key')}`);
      const again = await cli(generateKeyPair, ['--output-key-prefix', join(dir, 'piped')], { stdin: 'pw\n' });
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/^bundle-promoter: error: .*already exists/);
    });
  });

  describe('sign then verify (the seed workflow: annotate after e2e tests)', () => {
    it('signs by tag, then verifies with -a and prints cosign-like JSON', async () => {
      const { ref, pushed, repoName } = await image();
      const signed = await cli(sign, ['--key', join(dir, 'cosign.key'), '-a', 'e2e-tests-passed=True', ...registryFlags(), ref], { env: { COSIGN_PASSWORD: 'secret' } });
      expect(signed).toMatchObject({ code: 0, stdout: '' });
      expect(signed.stderr).toContain(`Pushing signature to: ${registry.host}/${repoName}:${cosignTag(pushed.digest, 'sig')}`);

      const ok = await cli(verify, ['--key', join(dir, 'cosign.pub'), '-a', 'e2e-tests-passed=True', '--tlog', 'ignore', ...registryFlags(), ref]);
      expect(ok.code).toBe(0);
      expect(ok.stderr).toContain(`Verification for ${ref} --`);
      expect(JSON.parse(ok.stdout)).toEqual([
        {
          critical: { identity: { 'docker-reference': `${registry.host}/${repoName}` }, image: { 'docker-manifest-digest': pushed.digest }, type: 'cosign container image signature' },
          optional: { 'e2e-tests-passed': 'True' },
        },
      ]);

      const wrong = await cli(verify, ['--key', join(dir, 'cosign.pub'), '-a', 'e2e-tests-passed=False', '--tlog', 'ignore', ...registryFlags(), `${registry.host}/${repoName}@${pushed.digest}`]);
      expect(wrong).toMatchObject({ code: 1, stdout: '' });
      expect(wrong.stderr).toContain('bundle-promoter: error: verification of');
      expect(wrong.stderr).toContain('missing or incorrect annotation');
      expect(wrong.stderr).toContain('e2e-tests-passed: want "False", signed "True"');
    });

    it('signs and verifies in the new bundle format, with the password on stdin', async () => {
      const { ref, pushed, repoName } = await image();
      const signed = await cli(sign, ['--key', join(dir, 'cosign.key'), '--new-bundle-format', '--password-stdin', '-a', 'stage=prod', ...registryFlags(), ref], { stdin: 'secret\n' });
      expect(signed.code).toBe(0);
      expect(await raw.findManifest(repoName, referrersTag(pushed.digest))).toBeDefined();
      const ok = await cli(verify, ['--key', join(dir, 'cosign.pub'), '-a', 'stage=prod', '--insecure-ignore-tlog', ...registryFlags(), ref]);
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject([{ predicateType: 'https://sigstore.dev/cosign/sign/v1', subject: [{ digest: { sha256: pushed.digest.slice(7) }, annotations: { stage: 'prod' } }] }]);
    });

    it('verifies with a policy file', async () => {
      const { ref } = await image();
      await cli(sign, ['--key', join(dir, 'cosign.key'), ...registryFlags(), ref], { env: { COSIGN_PASSWORD: 'secret' } });
      const policyFile = join(dir, 'policy.yaml');
      await import('node:fs/promises').then((fs) => fs.writeFile(policyFile, `authorities:\n  - name: ci\n    keys: [cosign.pub]\n    tlog: ignore\n`));
      expect((await cli(verify, ['--policy', policyFile, ...registryFlags(), ref])).code).toBe(0);
      const needsAnnotation = await cli(verify, ['--policy', policyFile, '-a', 'x=1', ...registryFlags(), ref]);
      expect(needsAnnotation.code).toBe(1);
    });

    it('fails with "no signatures found" for an unsigned image', async () => {
      const { ref } = await image();
      const r = await cli(verify, ['--key', join(dir, 'cosign.pub'), '--tlog', 'ignore', ...registryFlags(), ref]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('no signatures found');
    });

    it('when no --tlog is given, requires log evidence (as cosign) and says how to opt out', async () => {
      const { ref } = await image();
      await cli(sign, ['--key', join(dir, 'cosign.key'), ...registryFlags(), ref], { env: { COSIGN_PASSWORD: 'secret' } });
      const r = await cli(verify, ['--key', join(dir, 'cosign.pub'), '--rekor-key', join(FIXTURE_DIR, 'ci-rekor.pub'), ...registryFlags(), ref]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('tlog evidence missing');
      expect(r.stderr).toContain('--tlog ignore');
    });

    it('when no --tlog and no log key is given, refuses the command line naming --tlog ignore', async () => {
      const { ref } = await image();
      await cli(sign, ['--key', join(dir, 'cosign.key'), ...registryFlags(), ref], { env: { COSIGN_PASSWORD: 'secret' } });
      const r = await cli(verify, ['--key', join(dir, 'cosign.pub'), ...registryFlags(), ref]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/required by default.*--tlog ignore/);
    });

    it('when --tlog if-present is given without a log key, refuses it', async () => {
      const r = await cli(verify, ['--key', join(dir, 'cosign.pub'), '--tlog', 'if-present', ...registryFlags(), `${registry.host}/x:1`]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('--tlog if-present needs --trusted-root or --rekor-key');
    });
  });

  describe('when the command line is wrong', () => {
    it.each([
      ['verify without a key', verify, ['some/ref']],
      ['verify with an unknown flag', verify, ['--key', 'k', '--nope', 'r']],
      ['verify with --policy and --key', verify, ['--policy', 'p', '--key', 'k', 'r']],
      ['verify with a bad --tlog', verify, ['--key', 'k', '--tlog', 'sometimes', 'r']],
      ['verify keyless without an issuer', verify, ['--certificate-identity', 'a@b', '--trusted-root', 'x', 'r']],
      ['sign without a key', sign, ['r']],
      ['sign with two references', sign, ['--key', 'k', 'a', 'b']],
      ['generate-key-pair with a bad N', generateKeyPair, ['--scrypt-n', '1024']],
    ] as const)('exits 2 for %s', async (_what, command, argv) => {
      const r = await cli(command, [...argv]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^bundle-promoter: error: /);
      expect(r.stderr).toContain('Usage: bundle-promoter');
    });

    it('exits 1 for a wrong key password, naming the key file', async () => {
      const { ref } = await image();
      const r = await cli(sign, ['--key', join(dir, 'cosign.key'), ...registryFlags(), ref], { env: { COSIGN_PASSWORD: 'wrong' } });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`bundle-promoter: error: [KEY_DECRYPT_FAILED] ${join(dir, 'cosign.key')}: wrong password (decryption failed)\n`);
    });

    it('exits 1 for a digest the repository does not hold', async () => {
      const { repoName } = await image();
      const r = await cli(verify, ['--key', join(dir, 'cosign.pub'), '--tlog', 'ignore', ...registryFlags(), `${registry.host}/${repoName}@sha256:${'0'.repeat(64)}`]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('[MANIFEST_NOT_FOUND]');
    });

    it('exits 1 for a garbage public key, naming the file', async () => {
      const { ref } = await image();
      const r = await cli(verify, ['--key', join(dir, 'cosign.key'), '--tlog', 'ignore', ...registryFlags(), ref]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(join(dir, 'cosign.key'));
    });
  });
});
