import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { runCommand } from '../../support/cli-process.js';
import { startRegistry, type TestRegistry } from '../../support/registry.js';
import { RawClient } from '../../support/raw-client.js';
import { Fixtures, randomLayer } from '../../support/fixtures.js';
import { cli, interruptAtFirstRequest, StallingRegistry, type CliRun } from './run-cli.js';

/**
 * The CLI's contract, command by command: 0 success, 1 failure (the reason on stderr), 2 usage error (the
 * message and that command's usage on stderr, nothing on stdout), 130 interrupted.
 */
describe('bundle-promoter exit codes', () => {
  let registry: TestRegistry;
  let stalling: StallingRegistry;
  let dir: string;
  let bundle: string;
  let image: string;
  let unsigned: string;
  const insecure = () => ['--registry-insecure', registry.host];
  const env = () => ({ ...process.env, COSIGN_PASSWORD: 'secret', DOCKER_CONFIG: dir });
  const key = () => join(dir, 'cosign.key');
  const pub = () => join(dir, 'cosign.pub');

  beforeAll(async () => {
    [registry, stalling] = await Promise.all([startRegistry(), StallingRegistry.start()]);
    dir = await mkdtemp(join(tmpdir(), 'bp-exit-'));
    const fx = new Fixtures(RawClient.for(registry));
    const app = await fx.pushImage('exit/app', { layers: [await randomLayer(500, 'exit-app')], tag: 'v1' });
    await fx.pushImage('exit/unsigned', { layers: [await randomLayer(500, 'exit-unsigned')], tag: 'v1' });
    await fx.pushBundle('exit/bundle', { images: [app.ref], tag: 'v1' });
    bundle = `${registry.host}/exit/bundle:v1`;
    image = `${registry.host}/exit/app:v1`;
    unsigned = `${registry.host}/exit/unsigned:v1`;
    const gen = await cli(['generate-key-pair', '--output-key-prefix', join(dir, 'cosign')], { env: env() });
    expect(gen.code).toBe(0);
  });
  afterAll(async () => {
    await Promise.all([registry?.stop(), stalling?.stop()]);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** main() in this process, for the long lists of usage errors (a child per case costs a second each). */
  async function inProcess(args: string[]): Promise<CliRun> {
    return { ...(await runCommand(args, env())), signal: null };
  }

  function expectUsageError(r: CliRun, command: string, message: RegExp): void {
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^bundle-promoter: error: /);
    expect(r.stderr).toContain(`\n\nUsage: bundle-promoter ${command} `);
  }

  describe('help', () => {
    it('when asked for, prints the command list on stdout and exits 0', async () => {
      for (const args of [['help'], ['--help'], ['-h']]) {
        const r = await cli(args);
        expect(r).toMatchObject({ code: 0, stderr: '' });
        expect(r.stdout).toMatch(/^Usage: bundle-promoter <command> \[flags\]/);
      }
    });

    it('when no command is given, prints the command list and exits 2', async () => {
      const r = await cli([]);
      expect(r.code).toBe(2);
      expect(r.stdout).toMatch(/^Usage: bundle-promoter <command>/);
    });

    it('when the command is unknown, names it and exits 2', async () => {
      const r = await cli(['teleport']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^bundle-promoter: error: unknown command 'teleport'\n\nUsage: bundle-promoter <command>/);
    });
  });

  describe('copy', () => {
    it('when the bundle is copied, exits 0', async () => {
      const r = await cli(['copy', '-b', bundle, '--to-repo', `${registry.host}/exit/copied`, ...insecure()]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    });

    it('when the source tag does not exist, exits 1 with the reason', async () => {
      const r = await cli(['copy', '-b', `${registry.host}/exit/bundle:nope`, '--to-repo', `${registry.host}/exit/copied`, ...insecure()]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^bundle-promoter: error: \[MANIFEST_NOT_FOUND\] .*exit\/bundle:nope/);
      expect(r.stderr).not.toContain('Usage:');
    });

    it('when interrupted with SIGINT, exits 130', async () => {
      const r = await interruptAtFirstRequest(stalling, ['copy', '-b', `${stalling.host}/a:v1`, '--to-repo', `${stalling.host}/b`, '--registry-insecure', stalling.host]);
      expect(r.stderr).toBe('bundle-promoter: interrupted\n');
      expect(r.code).toBe(130);
    });
  });

  describe('plan', () => {
    it('when the bundle is planned, exits 0', async () => {
      const r = await cli(['plan', '-b', bundle, '--to-repo', `${registry.host}/exit/planned`, ...insecure()]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^plan \| /);
    });

    it('when the source tag does not exist, exits 1 with the reason', async () => {
      const r = await cli(['plan', '-b', `${registry.host}/exit/bundle:nope`, '--to-repo', `${registry.host}/exit/planned`, ...insecure()]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^bundle-promoter: error: \[MANIFEST_NOT_FOUND\]/);
    });

    it('when interrupted with SIGINT, exits 130', async () => {
      const r = await interruptAtFirstRequest(stalling, ['plan', '-b', `${stalling.host}/a:v1`, '--to-repo', `${stalling.host}/b`, '--registry-insecure', stalling.host]);
      expect(r.stderr).toBe('bundle-promoter: interrupted\n');
      expect(r.code).toBe(130);
    });
  });

  describe.each(['copy', 'plan'])('%s with a value that does not parse', (command) => {
    it.each([
      ['a malformed --bundle', ['--bundle', 'NOT A REF', '--to-repo', 'r.example/b'], /^bundle-promoter: error: --bundle: invalid reference "NOT A REF": it contains whitespace\n/],
      ['an upper-case --bundle', ['--bundle', 'UPPER/Case:v1', '--to-repo', 'r.example/b'], /^bundle-promoter: error: --bundle: invalid reference "UPPER\/Case:v1"/],
      ['a --to-repo with a tag', ['-b', 'r.example/a:v1', '--to-repo', 'r.example/b:tag'], /^bundle-promoter: error: --to-repo: invalid reference "r\.example\/b:tag": a repository must not carry a tag/],
      ['a malformed --to-tag', ['-b', 'r.example/a:v1', '--to-repo', 'r.example/b', '--to-tag', 'no way'], /^bundle-promoter: error: --to-tag: .*tag "no way" must match/],
      ['no --bundle', ['--to-repo', 'r.example/b'], /--bundle is required/],
      ['an unknown --include', ['-b', 'r.example/a:v1', '--to-repo', 'r.example/b', '--include', 'everything'], /unknown 'everything'/],
      ['a zero --concurrency', ['-b', 'r.example/a:v1', '--to-repo', 'r.example/b', '--concurrency', '0'], /--concurrency must be a positive whole number/],
      ['an unknown flag', ['--frobnicate'], /Unknown option '--frobnicate'/],
    ])('when given %s, exits 2 with the message and its own usage', async (_what, args, message) => {
      expectUsageError(await inProcess([command, ...args]), command, message);
    });

    it('when run as a process with a malformed --bundle, exits 2', async () => {
      expectUsageError(await cli([command, '-b', 'NOT A REF', '--to-repo', 'x']), command, /^bundle-promoter: error: --bundle: /);
    });
  });

  describe('sign', () => {
    it('when the image is signed, exits 0', async () => {
      const r = await cli(['sign', '--key', key(), ...insecure(), image], { env: env() });
      expect(r.stderr).toMatch(/^Pushing signature to: /);
      expect(r.code).toBe(0);
    });

    it('when the digest is not in the repository, exits 1', async () => {
      const r = await cli(['sign', '--key', key(), ...insecure(), `${registry.host}/exit/app@sha256:${'0'.repeat(64)}`], { env: env() });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^bundle-promoter: error: \[MANIFEST_NOT_FOUND\]/);
    });

    it.each([
      ['a malformed REF', ['--key', 'cosign.key', 'NOT A REF'], /^bundle-promoter: error: REF: invalid reference "NOT A REF"/],
      ['an annotation without =', ['--key', 'cosign.key', '-a', 'no-equals', 'r.example/a:v1'], /^bundle-promoter: error: --annotations: annotation "no-equals" must be key=value/],
      ['no key', ['r.example/a:v1'], /--key is required/],
    ])('when given %s, exits 2 with the message and its usage', async (_what, args, message) => {
      expectUsageError(await inProcess(['sign', ...args]), 'sign', message);
    });

    it('when run as a process with a malformed REF, exits 2', async () => {
      expectUsageError(await cli(['sign', '--key', key(), 'NOT A REF'], { env: env() }), 'sign', /^bundle-promoter: error: REF: /);
    });

    it('when interrupted with SIGINT, exits 130', async () => {
      const r = await interruptAtFirstRequest(stalling, ['sign', '--key', key(), '--registry-insecure', stalling.host, `${stalling.host}/a:v1`], { env: env() });
      expect(r.stderr).toBe('bundle-promoter: interrupted\n');
      expect(r.code).toBe(130);
    });
  });

  describe('verify', () => {
    it('when the signature verifies, exits 0', async () => {
      await cli(['sign', '--key', key(), ...insecure(), image], { env: env() });
      const r = await cli(['verify', '--key', pub(), '--tlog', 'ignore', ...insecure(), image]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toHaveLength(1);
    });

    it('when the image is not signed, exits 1', async () => {
      const r = await cli(['verify', '--key', pub(), '--tlog', 'ignore', ...insecure(), unsigned]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('no signatures found');
    });

    it.each([
      ['a malformed REF', ['--key', 'cosign.pub', 'NOT A REF'], /^bundle-promoter: error: REF: invalid reference "NOT A REF"/],
      ['an annotation without =', ['--key', 'cosign.pub', '-a', 'no-equals', 'r.example/a:v1'], /^bundle-promoter: error: --annotations: annotation "no-equals" must be key=value/],
      ['no key', ['r.example/a:v1'], /one of --key, --certificate-identity\(-regexp\) or --policy is required/],
    ])('when given %s, exits 2 with the message and its usage', async (_what, args, message) => {
      expectUsageError(await inProcess(['verify', ...args]), 'verify', message);
    });

    it('when run as a process with a malformed REF, exits 2', async () => {
      expectUsageError(await cli(['verify', '--key', pub(), 'NOT A REF']), 'verify', /^bundle-promoter: error: REF: /);
    });

    it('when interrupted with SIGINT, exits 130', async () => {
      const r = await interruptAtFirstRequest(stalling, ['verify', '--key', pub(), '--tlog', 'ignore', '--registry-insecure', stalling.host, `${stalling.host}/a:v1`]);
      expect(r.stderr).toBe('bundle-promoter: interrupted\n');
      expect(r.code).toBe(130);
    });
  });

  describe('generate-key-pair', () => {
    it('when the files exist already, exits 1 and overwrites nothing', async () => {
      const before = await readFile(key(), 'utf8');
      const r = await cli(['generate-key-pair', '--output-key-prefix', join(dir, 'cosign')], { env: env() });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^bundle-promoter: error: /);
      expect(await readFile(key(), 'utf8')).toBe(before);
    });

    it('when given a bad --scrypt-n, exits 2 with its usage', async () => {
      expectUsageError(await cli(['generate-key-pair', '--scrypt-n', '1024'], { env: env() }), 'generate-key-pair', /--scrypt-n must be one of/);
    });

    it('when interrupted while waiting for the password on stdin, exits 130', async () => {
      // In process: no request marks the moment the child waits on stdin, so the interrupt comes first.
      const controller = new AbortController();
      controller.abort(new Error('SIGINT'));
      const stderr = new PassThrough();
      let err = '';
      stderr.on('data', (c: Buffer) => { err += c.toString(); });
      const stdin = new PassThrough(); // never written to, never ended
      const code = await main(['generate-key-pair', '--output-key-prefix', join(dir, 'never')],
        { stdout: new PassThrough(), stderr, stdin, env: {}, signal: controller.signal });
      expect(code).toBe(130);
      expect(err).toBe('bundle-promoter: interrupted\n');
    });
  });

  describe('--help of each command', () => {
    it.each(['copy', 'plan', 'verify', 'sign', 'generate-key-pair'])('%s --help prints its own usage on stdout and exits 0', async (command) => {
      const r = await inProcess([command, '--help']);
      expect(r).toMatchObject({ code: 0, stderr: '' });
      expect(r.stdout).toMatch(new RegExp(`^Usage: bundle-promoter ${command} `));
      for (const other of ['copy', 'plan', 'verify', 'sign', 'generate-key-pair'].filter((c) => c !== command)) {
        expect(r.stdout).not.toContain(`Usage: bundle-promoter ${other} `);
      }
    });

    it('copy and plan describe different things: plan writes nothing, copy writes the tag last', async () => {
      const [copy, plan] = await Promise.all([cli(['copy', '--help']), cli(['plan', '--help'])]);
      expect([copy.code, plan.code]).toEqual([0, 0]);
      expect(copy.stdout).not.toBe(plan.stdout);
      expect(plan.stdout).toMatch(/writes nothing/);
      expect(plan.stdout).toMatch(/'copy' or 'present'/);
      expect(copy.stdout).not.toMatch(/writes nothing/);
      expect(copy.stdout).toMatch(/the bundle's tag last/);
    });
  });
});
