import { execFile } from 'node:child_process';
import { access, constants, copyFile, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, CLI, ROOT } from './run-cli.js';

const run = promisify(execFile);
const WRAPPER = join(ROOT, 'bin', 'bundle-promoter');
const PLATFORM = `${process.platform}-${process.arch}`;
const TOO_OLD = /^bundle-promoter: needs Node\.js >= 24\.15 \(found v\d+\.\d+\.\d+\); run 'make build' to fetch Node 24 and start it with bin\/bundle-promoter, or install Node 24 from https:\/\/nodejs\.org\n$/;

/** A Node older than 24.15 on this machine (Debian's /usr/bin/node is 20), or undefined. */
async function findOldNode(): Promise<string | undefined> {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    try {
      const { stdout } = await run(candidate, ['-p', 'process.versions.node']);
      const [major = 0, minor = 0] = stdout.trim().split('.').map(Number);
      if (major < 24 || (major === 24 && minor < 15)) return candidate;
    } catch {
      // not there, or not runnable
    }
  }
  return undefined;
}

async function hasProgram(name: string): Promise<boolean> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (await access(join(dir, name), constants.X_OK).then(() => true, () => false)) return true;
  }
  return false;
}

const oldNode = await findOldNode();
const haveMake = await hasProgram('make');

describe.skipIf(oldNode === undefined)('the built CLI on a Node older than 24.15', () => {
  it.each([
    ['help', ['help']],
    ['copy', ['copy', '-b', 'r.example/a:v1', '--to-repo', 'r.example/b']],
    ['no command at all', []],
  ])('when given %s, prints one line saying which Node it needs, no stack, and exits 1', async (_what, args) => {
    const r = await cli(args, { command: [oldNode ?? '', CLI] });
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(TOO_OLD);
    expect(r.stderr).toContain(`(found v${(await run(oldNode ?? '', ['-p', 'process.versions.node'])).stdout.trim()})`);
    expect(r.code).toBe(1);
  });
});

describe('bin/bundle-promoter', () => {
  let dir: string;
  /** A PATH whose `node` is the old one (or, without one, this Node), then the system's directories. */
  let oldPath: string;

  /** A checkout with the real dist and node_modules, bin/bundle-promoter copied in, and optionally a fetched Node. */
  async function checkout(name: string, options: { fetchedNode?: string; dist?: boolean }): Promise<string> {
    const root = join(dir, name);
    await mkdir(join(root, 'bin'), { recursive: true });
    await copyFile(WRAPPER, join(root, 'bin', 'bundle-promoter'));
    if (options.dist !== false) {
      await symlink(join(ROOT, 'dist'), join(root, 'dist'));
      await symlink(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    }
    if (options.fetchedNode !== undefined) {
      const bin = join(root, '.cache', 'node', 'node_modules', `node-${PLATFORM}`, 'bin');
      await mkdir(bin, { recursive: true });
      await symlink(options.fetchedNode, join(bin, 'node'));
    }
    return root;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bp-wrapper-'));
    const pathDir = join(dir, 'path');
    await mkdir(pathDir);
    await symlink(oldNode ?? process.execPath, join(pathDir, 'node'));
    oldPath = [pathDir, '/usr/bin', '/bin'].join(delimiter);
  });
  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('is an executable POSIX sh script in the repository', async () => {
    expect((await stat(WRAPPER)).mode & 0o111).toBe(0o111);
    expect((await readFile(WRAPPER, 'utf8')).split('\n')[0]).toBe('#!/bin/sh');
  });

  describe('when make build fetched a Node into .cache/node', () => {
    it('runs the CLI with that Node even though the node on PATH is old', async () => {
      const root = await checkout('fetched', { fetchedNode: process.execPath });
      const r = await cli(['help'], { command: [join(root, 'bin', 'bundle-promoter')], env: { PATH: oldPath } });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: bundle-promoter <command>/);
    });

    it('finds its checkout through a symlink, as make install leaves it', async () => {
      const root = await checkout('linked', { fetchedNode: process.execPath });
      const prefixBin = join(dir, 'prefix-linked', 'bin');
      await mkdir(prefixBin, { recursive: true });
      await symlink(join(root, 'bin', 'bundle-promoter'), join(prefixBin, 'bundle-promoter'));
      const r = await cli(['help'], { command: ['bundle-promoter'], env: { PATH: [prefixBin, oldPath].join(delimiter) } });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: bundle-promoter <command>/);
    });
  });

  describe.skipIf(oldNode === undefined)('when no Node was fetched and the node on PATH is old', () => {
    it('runs that node, which says in one line what it needs and exits 1', async () => {
      const root = await checkout('unfetched', {});
      const r = await cli(['help'], { command: [join(root, 'bin', 'bundle-promoter')], env: { PATH: oldPath } });
      expect(r.stderr).toMatch(TOO_OLD);
      expect(r.code).toBe(1);
    });
  });

  describe('when nothing was built', () => {
    it('says to run make build and exits 1', async () => {
      const root = await checkout('unbuilt', { dist: false });
      const r = await cli(['help'], { command: [join(root, 'bin', 'bundle-promoter')], env: { PATH: oldPath } });
      expect(r.stderr).toBe(`bundle-promoter: ${join(root, 'dist', 'cli.js')} is missing; run 'make build' in ${root}\n`);
      expect(r.code).toBe(1);
    });
  });

  describe.skipIf(!haveMake)('make install', () => {
    it('symlinks bin/bundle-promoter into PREFIX/bin, and make uninstall removes it', async () => {
      const prefix = join(dir, 'prefix');
      // -o build: the build is this test run's (dist exists); make install must not rebuild or reinstall deps here.
      await run('make', ['-s', '-o', 'build', 'install', `PREFIX=${prefix}`], { cwd: ROOT });
      const installed = join(prefix, 'bin', 'bundle-promoter');
      expect(await readlink(installed)).toBe(WRAPPER);
      // This checkout's fetched Node if there is one, else the Node running the tests: either way a Node >= 24.15.
      const r = await cli(['--help'], { command: [installed], env: { PATH: [dirname(process.execPath), oldPath].join(delimiter) } });
      expect(r.code).toBe(0);
      await run('make', ['-s', 'uninstall', `PREFIX=${prefix}`], { cwd: ROOT });
      await expect(access(installed)).rejects.toThrow();
    });
  });
});

