import { describe, expect, it } from 'vitest';
import { mergeScopes, parseAuthChallenge, scopesCover } from '../../../src/oci/auth-challenge.js';

describe('parseAuthChallenge', () => {
  describe('when given a Bearer challenge', () => {
    it('reads realm, service and scope', () => {
      expect(parseAuthChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:app:pull"')).toEqual({
        scheme: 'bearer',
        realm: 'https://auth.example.com/token',
        service: 'registry.example.com',
        scopes: ['repository:app:pull'],
      });
    });
    it('splits several space-separated scopes and keeps commas inside quotes', () => {
      const c = parseAuthChallenge('Bearer realm="http://127.0.0.1:9/token",service="test-registry",scope="repository:dst:pull,push repository:src:pull",error="insufficient_scope"');
      expect(c).toMatchObject({ scopes: ['repository:dst:pull,push', 'repository:src:pull'], error: 'insufficient_scope' });
    });
    it('is case-insensitive in scheme and parameter names and tolerates spaces', () => {
      expect(parseAuthChallenge('bearer Realm = "https://a/t" , SERVICE=svc')).toEqual({ scheme: 'bearer', realm: 'https://a/t', service: 'svc', scopes: [] });
    });
    it('unescapes quoted characters', () => {
      expect(parseAuthChallenge('Bearer realm="https://a/t",service="we\\"ird"')).toMatchObject({ service: 'we"ird' });
    });
  });

  describe('when given Basic', () => {
    it('reads the realm', () => {
      expect(parseAuthChallenge('Basic realm="test-realm"')).toEqual({ scheme: 'basic', realm: 'test-realm' });
    });
  });

  describe('when several challenges are offered', () => {
    it('prefers Bearer in one header', () => {
      expect(parseAuthChallenge('Basic realm="r", Bearer realm="https://a/t",service="s"')).toMatchObject({ scheme: 'bearer', realm: 'https://a/t' });
    });
    it('prefers Bearer across several headers', () => {
      expect(parseAuthChallenge(['Basic realm="r"', 'Bearer realm="https://a/t"'])).toMatchObject({ scheme: 'bearer' });
    });
  });

  describe('when nothing usable is there', () => {
    it.each([[undefined], [''], ['Negotiate'], ['Bearer service="x"']])('returns undefined for %j', (h) => {
      expect(parseAuthChallenge(h)).toBeUndefined();
    });
  });
});

describe('scopes', () => {
  it('a pull,push token covers pull on the same repository only', () => {
    expect(scopesCover(['repository:a:pull,push'], ['repository:a:pull'])).toBe(true);
    expect(scopesCover(['repository:a:pull'], ['repository:a:pull,push'])).toBe(false);
    expect(scopesCover(['repository:a:pull,push'], ['repository:b:pull'])).toBe(false);
    expect(scopesCover(['repository:a:pull,push', 'repository:b:pull'], ['repository:b:pull', 'repository:a:push'])).toBe(true);
  });
  it('merges actions per resource in a stable order', () => {
    expect(mergeScopes(['repository:b:pull', 'repository:a:push', 'repository:a:pull'])).toEqual(['repository:a:pull,push', 'repository:b:pull']);
  });
});
