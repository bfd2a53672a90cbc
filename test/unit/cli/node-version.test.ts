import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkNodeVersion, MIN_NODE_VERSION } from '../../../src/cli/node-version.js';

describe('checkNodeVersion', () => {
  describe('when Node is older than the minimum', () => {
    it.each(['20.20.2', '22.19.0', '24.14.9', 'v18.0.0', '24.0.0-pre'])('refuses %s with one line naming both versions and the remedies', (found) => {
      const message = checkNodeVersion(found);
      expect(message).toBe(
        `needs Node.js >= 24.15 (found v${found.replace(/^v/, '')}); run 'make build' to fetch Node 24 and start it with bin/bundle-promoter, `
        + 'or install Node 24 from https://nodejs.org',
      );
      expect(message).not.toContain('\n');
    });
  });

  describe('when Node is at least the minimum', () => {
    it.each(['24.15.0', '24.15.1', '24.21.0', '25.0.0', '30.1.2'])('accepts %s', (found) => {
      expect(checkNodeVersion(found)).toBeUndefined();
    });
  });

  describe('when package.json declares engines.node', () => {
    it('is the same minimum as the check', async () => {
      const pkg = JSON.parse(await readFile(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8')) as { engines: { node: string } };
      expect(pkg.engines.node).toBe(`>=${MIN_NODE_VERSION}`);
    });
  });
});
