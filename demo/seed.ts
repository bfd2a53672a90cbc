import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Fixtures, randomLayer } from '../test/support/fixtures.js';
import { RawClient } from '../test/support/raw-client.js';
import type { TestRegistry } from '../test/support/registry.js';
import type { CliRunner } from './cli-runner.js';
import { DemoFailure } from './demo-failure.js';
import type { Narrator } from './narrator.js';

/** What {@link seed} put in the registry and the demo directory. */
export interface Seeded {
  /** `127.0.0.1:<port>/useful-server-image@sha256:…` */
  readonly image: string;
  readonly imageDigest: string;
  /** `127.0.0.1:<port>/useful-bundle-dev-repo:1.0.0` */
  readonly bundle: string;
  readonly bundleDigest: string;
  /** Paths relative to the demo directory. */
  readonly keys: { readonly image: { key: string; pub: string }; readonly bundle: { key: string; pub: string } };
}

export const TAG = '1.0.0';
export const REPOS = {
  image: 'useful-server-image',
  dev: 'useful-bundle-dev-repo',
  test: 'useful-bundle-test-repo',
  prod: 'useful-bundle-prod-repo',
} as const;

/**
 * The seed scenario: two key pairs (the image's pipeline and the bundle's pipeline sign with different keys),
 * `useful-server-image:1.0.0` signed with the image key, `useful-bundle-dev-repo:1.0.0` (an imgpkg bundle
 * pinning that image by digest) signed with the bundle key, and the public keys as Secret files under
 * `secrets/` for `run --secrets-dir`. Content is pushed with the test fixtures (what `imgpkg push` writes);
 * keys and signatures are made by the real CLI.
 */
export async function seed(registry: TestRegistry, dir: string, cli: CliRunner, narrator: Narrator, signal: AbortSignal): Promise<Seeded> {
  const insecure = ['--registry-insecure', registry.host];
  // Two independent commands at a time (their outputs name their files): the CLI's start-up is most of the
  // demo's time on a busy machine.
  const runBoth = async (a: string[], b: string[]): Promise<void> => {
    const results = await Promise.all([cli.run(a, signal), cli.run(b, signal)]);
    for (const [i, result] of results.entries()) {
      narrator.output(result.stderr);
      if (result.code !== 0) throw new DemoFailure(`bundle-promoter ${[a, b][i]!.join(' ')} exited ${result.code}:\n${result.stderr}`);
    }
  };

  await mkdir(join(dir, 'keys'), { recursive: true });
  const keys = {
    image: { key: 'keys/image.key', pub: 'keys/image.pub' },
    bundle: { key: 'keys/bundle.key', pub: 'keys/bundle.pub' },
  };
  await runBoth(['generate-key-pair', '--output-key-prefix', 'keys/image'], ['generate-key-pair', '--output-key-prefix', 'keys/bundle']);
  for (const [secret, pub] of [['image-signing-key', keys.image.pub], ['bundle-signing-key', keys.bundle.pub]] as const) {
    await mkdir(join(dir, 'secrets', secret), { recursive: true });
    await copyFile(join(dir, pub), join(dir, 'secrets', secret, 'cosign.pub'));
  }
  narrator.say('public keys as Secret files: secrets/image-signing-key/cosign.pub, secrets/bundle-signing-key/cosign.pub');

  const fx = new Fixtures(RawClient.for(registry));
  const image = await fx.pushImage(REPOS.image, { layers: [await randomLayer(256 * 1024, 'useful-server-image')], tag: TAG });
  narrator.ok(`pushed ${registry.host}/${REPOS.image}:${TAG} (${image.digest})`);
  const bundle = await fx.pushBundle(REPOS.dev, {
    images: [image.ref],
    tag: TAG,
    files: { 'config/deployment.yml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: useful-server\n' },
  });
  narrator.ok(`pushed the bundle ${registry.host}/${REPOS.dev}:${TAG} (${bundle.digest}), which pins that image`);

  await runBoth(
    ['sign', '--key', keys.image.key, ...insecure, `${registry.host}/${REPOS.image}:${TAG}`],
    ['sign', '--key', keys.bundle.key, ...insecure, `${registry.host}/${REPOS.dev}:${TAG}`],
  );
  return { image: image.ref, imageDigest: image.digest, bundle: `${registry.host}/${REPOS.dev}:${TAG}`, bundleDigest: bundle.digest, keys };
}
