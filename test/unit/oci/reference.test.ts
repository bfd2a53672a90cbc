import { describe, expect, it } from 'vitest';
import { formatReference, formatRepository, parseReference, parseRepository, withDigest, withTag } from '../../../src/oci/index.js';
import { failureOf } from '../../support/failure.js';

const HEX = 'a'.repeat(64);
const DIGEST = `sha256:${HEX}`;


describe('parseReference', () => {
  describe('when the name has no registry', () => {
    it.each([
      ['nginx', { registry: 'index.docker.io', repository: 'library/nginx', tag: 'latest' }],
      ['nginx:1.25', { registry: 'index.docker.io', repository: 'library/nginx', tag: '1.25' }],
      ['team/app:v1', { registry: 'index.docker.io', repository: 'team/app', tag: 'v1' }],
      ['a/b/c', { registry: 'index.docker.io', repository: 'a/b/c', tag: 'latest' }],
    ])('defaults %s to Docker Hub', (input, expected) => {
      expect(parseReference(input)).toEqual(expected);
    });
  });

  describe('when the registry is Docker Hub under another name', () => {
    it('maps docker.io to index.docker.io and adds library/', () => {
      expect(parseReference('docker.io/nginx')).toEqual({ registry: 'index.docker.io', repository: 'library/nginx', tag: 'latest' });
    });
    it('keeps an explicit index.docker.io and adds library/ to one segment', () => {
      expect(parseReference('index.docker.io/busybox:1')).toEqual({ registry: 'index.docker.io', repository: 'library/busybox', tag: '1' });
    });
    it('does not add library/ to two segments', () => {
      expect(parseReference('docker.io/team/app').repository).toBe('team/app');
    });
  });

  describe('when the first segment is a registry', () => {
    it.each([
      ['ghcr.io/org/app:1', 'ghcr.io', 'org/app'],
      ['localhost/app', 'localhost', 'app'],
      ['localhost:5000/app', 'localhost:5000', 'app'],
      ['127.0.0.1:5000/a/b', '127.0.0.1:5000', 'a/b'],
      ['registry.example.com:443/x', 'registry.example.com:443', 'x'],
      ['[::1]:5000/app', '[::1]:5000', 'app'],
      ['Registry.Example.COM/app', 'registry.example.com', 'app'],
    ])('%s → registry %s, repository %s', (input, registry, repository) => {
      const ref = parseReference(input);
      expect(ref.registry).toBe(registry);
      expect(ref.repository).toBe(repository);
    });

    it('treats a one-segment name with a port-like suffix as a Docker Hub tag', () => {
      expect(parseReference('localhost:5000')).toEqual({ registry: 'index.docker.io', repository: 'library/localhost', tag: '5000' });
    });

    it('treats a first segment without . or : as a path component', () => {
      expect(parseReference('myregistry/app')).toEqual({ registry: 'index.docker.io', repository: 'myregistry/app', tag: 'latest' });
    });
  });

  describe('when a digest is given', () => {
    it('keeps the digest and adds no tag', () => {
      expect(parseReference(`ghcr.io/org/app@${DIGEST}`)).toEqual({ registry: 'ghcr.io', repository: 'org/app', digest: DIGEST });
    });
    it('keeps both tag and digest for name:tag@digest', () => {
      expect(parseReference(`127.0.0.1:5000/app:v1@${DIGEST}`)).toEqual({
        registry: '127.0.0.1:5000',
        repository: 'app',
        tag: 'v1',
        digest: DIGEST,
      });
    });
    it('refuses other algorithms with UNSUPPORTED_DIGEST naming the digest', () => {
      const f = failureOf(() => parseReference(`app@sha512:${'b'.repeat(128)}`));
      expect(f.code).toBe('UNSUPPORTED_DIGEST');
      expect(f.message).toContain('sha512:');
    });
    it.each([
      [`app@sha256:${'A'.repeat(64)}`, 'uppercase hex'],
      [`app@sha256:${'a'.repeat(63)}`, 'too short'],
      ['app@sha256:', 'empty hex'],
      ['app@', 'nothing after @'],
      ['app@latest', 'not a digest'],
    ])('refuses %s (%s) as INVALID_REFERENCE naming the input', (input) => {
      const f = failureOf(() => parseReference(input));
      expect(f.code).toBe('INVALID_REFERENCE');
      expect(f.message).toContain(`"${input}"`);
    });
  });

  describe('when the input is invalid', () => {
    it.each([
      ['', 'empty'],
      ['Nginx', 'must be lowercase'],
      ['ghcr.io/Org/app', '"Org" must be lowercase'],
      ['app:', 'tag ""'],
      ['app:-x', 'tag "-x"'],
      [`app:${'t'.repeat(129)}`, 'tag'],
      ['ghcr.io//app', 'empty component'],
      ['ghcr.io/app/', 'empty component'],
      ['ghcr.io/a..b', '"a..b"'],
      ['ghcr.io/-app', '"-app"'],
      ['ghcr.io/app_', '"app_"'],
      ['bad_host.io/app', 'registry "bad_host.io"'],
      ['localhost:99999/app', 'invalid port "99999"'],
      ['localhost:abc/app', 'invalid port "abc"'],
      ['my app', 'whitespace'],
      [`ghcr.io/${'a/'.repeat(130)}a`, 'longer than 255'],
    ])('refuses %j with a message mentioning %s', (input, part) => {
      const f = failureOf(() => parseReference(input));
      expect(f.code).toBe('INVALID_REFERENCE');
      expect(f.message).toContain(`"${input}"`);
      expect(f.message).toContain(part);
    });

    it('accepts the separators the distribution grammar allows', () => {
      expect(parseReference('ghcr.io/a.b_c__d-e--f/x').repository).toBe('a.b_c__d-e--f/x');
    });
    it('accepts a 128-character tag', () => {
      expect(parseReference(`app:${'t'.repeat(128)}`).tag).toHaveLength(128);
    });
  });
});

describe('parseRepository', () => {
  describe('when the input is a plain repository', () => {
    it('normalises like parseReference but sets no tag', () => {
      expect(parseRepository('nginx')).toEqual({ registry: 'index.docker.io', repository: 'library/nginx' });
      expect(parseRepository('127.0.0.1:5000/team/app')).toEqual({ registry: '127.0.0.1:5000', repository: 'team/app' });
    });
  });
  describe('when the input carries a tag or digest', () => {
    it('refuses a tag, naming the input and the tag', () => {
      const f = failureOf(() => parseRepository('ghcr.io/org/app:v1'));
      expect(f.code).toBe('INVALID_REFERENCE');
      expect(f.message).toContain('"ghcr.io/org/app:v1"');
      expect(f.message).toContain(':v1');
    });
    it('refuses a digest, naming it', () => {
      const f = failureOf(() => parseRepository(`ghcr.io/org/app@${DIGEST}`));
      expect(f.code).toBe('INVALID_REFERENCE');
      expect(f.message).toContain(DIGEST);
    });
  });
});

describe('formatReference', () => {
  it('round-trips tag, digest and both', () => {
    for (const s of ['ghcr.io/org/app:v1', `ghcr.io/org/app@${DIGEST}`, `localhost:5000/app:v1@${DIGEST}`]) {
      expect(formatReference(parseReference(s))).toBe(s);
    }
  });
  it('spells Docker Hub out in full', () => {
    expect(formatReference(parseReference('nginx'))).toBe('index.docker.io/library/nginx:latest');
    expect(formatRepository(parseRepository('nginx'))).toBe('index.docker.io/library/nginx');
  });
});

describe('withDigest and withTag', () => {
  const repo = parseRepository('127.0.0.1:5000/app');
  it('build references on a repository', () => {
    expect(withDigest(repo, DIGEST)).toEqual({ ...repo, digest: DIGEST });
    expect(withTag(repo, 'v1')).toEqual({ ...repo, tag: 'v1' });
  });
  it('validate their input', () => {
    expect(failureOf(() => withDigest(repo, 'sha256:xyz')).code).toBe('INVALID_REFERENCE');
    expect(failureOf(() => withDigest(repo, `sha384:${'c'.repeat(96)}`)).code).toBe('UNSUPPORTED_DIGEST');
    const f = failureOf(() => withTag(repo, 'bad tag'));
    expect(f.code).toBe('INVALID_REFERENCE');
    expect(f.message).toContain('"bad tag"');
  });
});
