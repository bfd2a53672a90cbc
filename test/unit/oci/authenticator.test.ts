import { describe, expect, it } from 'vitest';
import { isPromoteError } from '../../../src/errors.js';
import { Authenticator, type TokenFetch } from '../../../src/oci/authenticator.js';
import { staticKeychain, type Credential } from '../../../src/oci/index.js';

const BEARER = { scheme: 'bearer', realm: 'https://auth.r.example/token', service: 'svc', scopes: [] } as const;

interface Seen {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body?: string;
}

function setup(options: { credential?: Credential; answer?: (n: number) => { status: number; body: unknown } } = {}) {
  const seen: Seen[] = [];
  let clock = 1_000_000;
  const fetch: TokenFetch = async (req) => {
    seen.push({ url: new URL(req.url), method: req.method, headers: req.headers, ...(req.body !== undefined && { body: req.body }) });
    const { status, body } = options.answer?.(seen.length) ?? { status: 200, body: { token: `t${seen.length}`, expires_in: 300 } };
    return { status, body: Buffer.from(JSON.stringify(body)) };
  };
  const auth = new Authenticator({
    keychain: options.credential ? staticKeychain(options.credential) : { resolve: async () => undefined },
    fetch,
    now: () => clock,
  });
  return { auth, seen, advance: (ms: number) => (clock += ms) };
}

describe('Authenticator', () => {
  describe('when no challenge has been seen', () => {
    it('sends nothing', async () => {
      const { auth, seen } = setup({ credential: { username: 'u', password: 'p' } });
      expect(await auth.authorization('r.example', ['repository:a:pull'])).toBeUndefined();
      expect(seen).toHaveLength(0);
    });
  });

  describe('when the registry wants Basic', () => {
    it('sends the credentials without a token request', async () => {
      const { auth, seen } = setup({ credential: { username: 'u', password: 'p' } });
      auth.learn('r.example', { scheme: 'basic', realm: 'x' });
      expect(await auth.authorization('r.example', [])).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
      expect(seen).toHaveLength(0);
    });
  });

  describe('when the registry wants a bearer token', () => {
    it('GETs the realm with service, repeated scope parameters and Basic credentials', async () => {
      const { auth, seen } = setup({ credential: { username: 'u', password: 'p' } });
      auth.learn('r.example', BEARER);
      expect(await auth.authorization('r.example', ['repository:dst:pull,push', 'repository:src:pull'])).toBe('Bearer t1');
      expect(seen[0]?.method).toBe('GET');
      expect(seen[0]?.url.searchParams.get('service')).toBe('svc');
      expect(seen[0]?.url.searchParams.getAll('scope')).toEqual(['repository:dst:pull,push', 'repository:src:pull']);
      expect(seen[0]?.headers['authorization']).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
    });

    it('caches per scope set, and a pull,push token serves pull', async () => {
      const { auth, seen } = setup();
      auth.learn('r.example', BEARER);
      await auth.authorization('r.example', ['repository:a:pull,push']);
      expect(await auth.authorization('r.example', ['repository:a:pull'])).toBe('Bearer t1');
      expect(await auth.authorization('r.example', ['repository:b:pull'])).toBe('Bearer t2');
      expect(seen).toHaveLength(2);
    });

    it('shares one token request between concurrent callers', async () => {
      const { auth, seen } = setup();
      auth.learn('r.example', BEARER);
      const all = await Promise.all([1, 2, 3].map(() => auth.authorization('r.example', ['repository:a:pull'])));
      expect(new Set(all)).toEqual(new Set(['Bearer t1']));
      expect(seen).toHaveLength(1);
    });

    it('keeps serving the other callers when the one that started the shared request gives up', async () => {
      let answer!: () => void;
      const gate = new Promise<void>((resolve) => { answer = resolve; });
      const auth = new Authenticator({
        keychain: { resolve: async () => undefined },
        fetch: async () => { await gate; return { status: 200, body: Buffer.from('{"token":"shared","expires_in":300}') }; },
        now: () => 1_000_000,
      });
      auth.learn('r.example', BEARER);
      const impatient = new AbortController();
      const first = auth.authorization('r.example', ['repository:a:pull'], impatient.signal);
      const second = auth.authorization('r.example', ['repository:a:pull']);
      impatient.abort();
      await expect(first).rejects.toMatchObject({ code: 'ABORTED' });
      answer();
      expect(await second).toBe('Bearer shared');
    });

    it('refreshes shortly before expiry, defaulting expires_in to 60 s', async () => {
      const { auth, seen, advance } = setup({ answer: (n) => ({ status: 200, body: { access_token: `a${n}` } }) });
      auth.learn('r.example', BEARER);
      expect(await auth.authorization('r.example', ['repository:a:pull'])).toBe('Bearer a1');
      advance(50_000);
      expect(await auth.authorization('r.example', ['repository:a:pull'])).toBe('Bearer a1');
      advance(5_000); // 55 s: inside the 6 s safety margin of a 60 s token
      expect(await auth.authorization('r.example', ['repository:a:pull'])).toBe('Bearer a2');
      expect(seen).toHaveLength(2);
    });

    it('drops an invalidated token', async () => {
      const { auth } = setup();
      auth.learn('r.example', BEARER);
      const first = await auth.authorization('r.example', ['repository:a:pull']);
      auth.invalidate('r.example', first ?? '');
      expect(await auth.authorization('r.example', ['repository:a:pull'])).toBe('Bearer t2');
    });

    it('exchanges an identity token by POST with the refresh_token grant', async () => {
      const { auth, seen } = setup({ credential: { identityToken: 'refresh-me' }, answer: () => ({ status: 200, body: { access_token: 'acc' } }) });
      auth.learn('r.example', BEARER);
      expect(await auth.authorization('r.example', ['repository:a:pull', 'repository:b:pull'])).toBe('Bearer acc');
      expect(seen[0]?.method).toBe('POST');
      const form = new URLSearchParams(seen[0]?.body);
      expect(form.get('grant_type')).toBe('refresh_token');
      expect(form.get('refresh_token')).toBe('refresh-me');
      expect(form.get('scope')).toBe('repository:a:pull repository:b:pull');
      expect(form.get('service')).toBe('svc');
    });

    it('uses a registry token as is', async () => {
      const { auth, seen } = setup({ credential: { registryToken: 'rt' } });
      auth.learn('r.example', BEARER);
      expect(await auth.authorization('r.example', ['repository:a:pull'])).toBe('Bearer rt');
      expect(seen).toHaveLength(0);
    });

    it('reports a refused token request as REGISTRY_UNAUTHORIZED without the password', async () => {
      const { auth } = setup({ credential: { username: 'u', password: 's3cret-pw' }, answer: () => ({ status: 401, body: {} }) });
      auth.learn('r.example', BEARER);
      const e = await auth.authorization('r.example', ['repository:a:pull']).catch((x: unknown) => x);
      expect(isPromoteError(e, 'REGISTRY_UNAUTHORIZED')).toBe(true);
      expect(String((e as Error).message)).toContain('r.example');
      expect(String((e as Error).message)).not.toContain('s3cret-pw');
    });
  });

  describe('when the token server has no OAuth2 POST (404)', () => {
    it('falls back to GET with the identity token as the <token> password', async () => {
      const { auth, seen } = setup({ credential: { identityToken: 'refresh-me' }, answer: (n) => (n === 1 ? { status: 404, body: {} } : { status: 200, body: { token: 'g' } }) });
      auth.learn('r.example', BEARER);
      expect(await auth.authorization('r.example', ['repository:a:pull'])).toBe('Bearer g');
      expect(seen.map((s) => s.method)).toEqual(['POST', 'GET']);
      expect(seen[1]?.url.searchParams.getAll('scope')).toEqual(['repository:a:pull']);
      expect(seen[1]?.headers['authorization']).toBe(`Basic ${Buffer.from('<token>:refresh-me').toString('base64')}`);
    });
  });

  describe('when the realm is on another host', () => {
    it('sends credentials over HTTPS within the registry domain, to its own host, and nowhere else', async () => {
      const basic = `Basic ${Buffer.from('u:p').toString('base64')}`;
      const cases: [string, string, string | undefined][] = [
        ['registry-1.docker.io', 'https://auth.docker.io/token', basic],
        ['index.docker.io', 'https://auth.docker.io/token', basic],
        ['127.0.0.1:5000', 'http://127.0.0.1:5001/token', basic],
        ['r.example', 'http://auth.r.example/token', undefined],
        ['r.example', 'https://evil.example.net/token', undefined],
        ['10.0.0.1:5000', 'https://10.0.0.2/token', undefined],
        ['registry.example.co.uk', 'https://auth.example.co.uk/token', basic],
        ['registry.example.co.uk', 'https://auth.other.co.uk/token', undefined],
      ];
      for (const [registry, realm, expected] of cases) {
        const { auth, seen } = setup({ credential: { username: 'u', password: 'p' } });
        auth.learn(registry, { ...BEARER, realm });
        await auth.authorization(registry, ['repository:a:pull']);
        expect([registry, realm, seen[0]?.headers['authorization']]).toEqual([registry, realm, expected]);
      }
    });
  });
});
