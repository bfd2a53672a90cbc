import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RawClient, RawClientError } from '../../support/raw-client.js';
import { DEFAULT_ACL, startRegistry, type TestRegistry } from '../../support/registry.js';
import { allowedActions } from '../../support/token-server.js';

describe('TokenServer', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: 'token' });
  });
  afterAll(async () => {
    await registry.stop();
  });
  beforeEach(() => {
    registry.tokenServer?.setAcl(DEFAULT_ACL);
  });

  function tokenUrl(...scopes: string[]): string {
    const url = new URL(registry.tokenServer?.realm ?? '');
    url.searchParams.set('service', 'test-registry');
    for (const scope of scopes) url.searchParams.append('scope', scope);
    return url.href;
  }
  const basic = (user: string, password: string): Record<string, string> => ({
    Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
  });
  function claims(token: string): Record<string, unknown> {
    return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  }

  describe('when the test user asks for scopes the default ACL allows', () => {
    it('issues an RS256 JWT with x5c and the spec claims, and counts it', async () => {
      const before = registry.tokenServer?.tokensIssued ?? 0;
      const res = await fetch(tokenUrl('repository:team/app:pull,push', 'repository:other:pull'), { headers: basic('testuser', 'testpass') });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
      expect(body.access_token).toBe(body.token);
      expect(body.expires_in).toBe(300);
      const header = JSON.parse(Buffer.from(body.token.split('.')[0] ?? '', 'base64url').toString('utf8')) as { alg: string; x5c: string[] };
      expect(header.alg).toBe('RS256');
      const pem = await readFile(`${registry.dir}/token-cert.pem`, 'utf8');
      expect(header.x5c).toEqual([new X509Certificate(pem).raw.toString('base64')]);
      const c = claims(body.token);
      expect(c).toMatchObject({ iss: 'test-issuer', aud: 'test-registry', sub: 'testuser' });
      expect(c['access']).toEqual([
        { type: 'repository', name: 'team/app', actions: ['pull', 'push'] },
        { type: 'repository', name: 'other', actions: ['pull'] },
      ]);
      expect(Number(c['exp']) - Number(c['iat'])).toBe(300);
      expect(typeof c['jti']).toBe('string');
      expect(registry.tokenServer?.tokensIssued).toBe(before + 1);
    });

    it('lets the registry accept a push with the token', async () => {
      const client = RawClient.for(registry);
      const digest = await client.pushBlob('team/app', Buffer.from('hello'));
      expect(await client.blobExists('team/app', digest)).toBe(true);
    });
  });

  describe('when the ACL makes a repository pull-only', () => {
    it('grants pull, drops push, and the registry answers the push with 401 insufficient_scope', async () => {
      const client = RawClient.for(registry);
      const digest = await client.pushBlob('readonly/app', Buffer.from('seed'));
      registry.tokenServer?.setAcl({ '*': ['pull', 'push'], 'readonly/*': ['pull'] });

      const fresh = RawClient.for(registry);
      expect(await fresh.blobExists('readonly/app', digest)).toBe(true);
      const error = await fresh.pushBlob('readonly/app', Buffer.from('denied')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RawClientError);
      expect((error as RawClientError).status).toBe(401);
      expect((error as RawClientError).challenge).toContain('error="insufficient_scope"');
      expect(registry.tokenServer?.issued.at(-1)?.access).toEqual([{ type: 'repository', name: 'readonly/app', actions: ['pull'] }]);
      await expect(fresh.pushBlob('writable/app', Buffer.from('ok'))).resolves.toMatch(/^sha256:/);
    });
  });

  describe('when the caller is anonymous', () => {
    it('issues a token without access, which the registry rejects', async () => {
      const res = await fetch(tokenUrl('repository:team/app:pull'));
      const { token } = (await res.json()) as { token: string };
      expect(claims(token)['access']).toEqual([]);
      const anonymous = new RawClient({ baseUrl: registry.url });
      await expect(anonymous.listTags('team/app')).rejects.toMatchObject({ status: 401 });
    });
  });

  describe('when the password is wrong', () => {
    it('answers 401 and issues nothing', async () => {
      const before = registry.tokenServer?.tokensIssued;
      const res = await fetch(tokenUrl('repository:team/app:pull'), { headers: basic('testuser', 'nope') });
      expect(res.status).toBe(401);
      expect(registry.tokenServer?.tokensIssued).toBe(before);
    });
  });
});

describe('allowedActions', () => {
  describe('when several patterns match', () => {
    it('takes the longest pattern', () => {
      const acl = { '*': ['pull', 'push'], 'readonly/*': ['pull'], 'readonly/special': ['pull', 'push', 'delete'] };
      expect(allowedActions(acl, 'app')).toEqual(['pull', 'push']);
      expect(allowedActions(acl, 'readonly/a/b')).toEqual(['pull']);
      expect(allowedActions(acl, 'readonly/special')).toEqual(['pull', 'push', 'delete']);
      expect(allowedActions({ 'team/*': ['pull'] }, 'other')).toEqual([]);
    });
  });
});
