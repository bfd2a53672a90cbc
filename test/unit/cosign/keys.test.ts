import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPromoteError } from '../../../src/errors.js';
import {
  COSIGN_PRIVATE_KEY_PEM,
  encryptPrivateKey,
  generateKeyPair,
  loadPrivateKey,
  loadPublicKey,
  parsePrivateKey,
  parsePublicKey,
  SCRYPT_N_VALUES,
} from '../../../src/cosign/index.js';
import { signRaw, verifyRawSignature } from '../../../src/cosign/raw-signature.js';
import { FIXTURE_DIR, fixture, fixtureText } from './fixture-files.js';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('did not throw');
}

describe('parsePublicKey', () => {
  describe('when given the fixture P-256 keys', () => {
    it('computes key ids as base64(sha256(SPKI DER))', () => {
      const k1 = parsePublicKey(fixture('ci-cosign.pub'), 'ci-cosign.pub');
      const k2 = parsePublicKey(fixture('ci-cosign2.pub'), 'ci-cosign2.pub');
      expect(k1.algorithm).toBe('ecdsa-p256');
      expect(createHash('sha256').update(k1.spki).digest('hex')).toMatch(/^c87a7901.*301f$/);
      expect(createHash('sha256').update(k2.spki).digest('hex')).toMatch(/^5e7eb6c1.*bdfa$/);
      expect(k1.keyId).toBe(createHash('sha256').update(k1.spki).digest('base64'));
    });
  });

  describe('when given other algorithms', () => {
    it.each([
      ['P-384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }), 'ecdsa-p384'],
      ['P-521', () => generateKeyPairSync('ec', { namedCurve: 'P-521' }), 'ecdsa-p521'],
      ['RSA', () => generateKeyPairSync('rsa', { modulusLength: 2048 }), 'rsa'],
      ['Ed25519', () => generateKeyPairSync('ed25519'), 'ed25519'],
    ] as const)('reads %s SPKI keys and verifies their signatures', (_name, gen, algorithm) => {
      const { publicKey, privateKey } = gen();
      const k = parsePublicKey(publicKey.export({ format: 'pem', type: 'spki' }), 'k.pub');
      expect(k.algorithm).toBe(algorithm);
      const data = Buffer.from('payload');
      const sig = algorithm === 'ed25519' ? sign(null, data, privateKey) : sign('sha256', data, privateKey);
      expect(verifyRawSignature(k, data, sig)).toBe(true);
      expect(verifyRawSignature(k, Buffer.from('other'), sig)).toBe(false);
    });

    it('reads PKCS#1 "RSA PUBLIC KEY" PEM with the same key id as its SPKI form', () => {
      const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const pkcs1 = parsePublicKey(publicKey.export({ format: 'pem', type: 'pkcs1' }), 'rsa.pub');
      const spki = parsePublicKey(publicKey.export({ format: 'pem', type: 'spki' }), 'rsa.pub');
      expect(pkcs1.keyId).toBe(spki.keyId);
    });

    it('accepts IEEE-P1363 ECDSA signatures after DER fails', () => {
      const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const k = parsePublicKey(publicKey.export({ format: 'pem', type: 'spki' }), 'k.pub');
      const sig = sign('sha256', Buffer.from('x'), { key: privateKey, dsaEncoding: 'ieee-p1363' });
      expect(sig.length).toBe(64);
      expect(verifyRawSignature(k, Buffer.from('x'), sig)).toBe(true);
    });
  });

  describe('when given garbage', () => {
    it.each([
      ['no PEM at all', 'hello'],
      ['a PEM with a bad body', '-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n'],
      ['a PEM whose DER is not a key', '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'],
      ['a certificate', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'],
      ['two keys', `${fixtureText('ci-cosign.pub')}${fixtureText('ci-cosign2.pub')}`],
    ])('refuses %s with KEY_INVALID naming the file', (_what, text) => {
      const e = thrown(() => parsePublicKey(text, '/keys/bad.pub'));
      expect(isPromoteError(e, 'KEY_INVALID')).toBe(true);
      expect((e as Error).message).toContain('/keys/bad.pub');
    });

    it('refuses an unreadable file with KEY_INVALID naming it', async () => {
      await expect(loadPublicKey('/nonexistent/cosign.pub')).rejects.toMatchObject({ code: 'KEY_INVALID', message: expect.stringContaining('/nonexistent/cosign.pub') });
    });
  });
});

describe('parsePrivateKey', () => {
  describe('when given the encrypted fixture key #8', () => {
    const pem = fixtureText('cosign-keys_test.sigstore-hello.key');

    it('holds the documented scrypt + secretbox JSON', () => {
      const body = pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, '');
      const env = JSON.parse(Buffer.from(body, 'base64').toString()) as { kdf: { name: string; params: unknown; salt: string }; cipher: { name: string; nonce: string } };
      expect(env.kdf.name).toBe('scrypt');
      expect(env.kdf.params).toEqual({ N: 32768, r: 8, p: 1 });
      expect(Buffer.from(env.kdf.salt, 'base64').length).toBe(32);
      expect(env.cipher.name).toBe('nacl/secretbox');
      expect(Buffer.from(env.cipher.nonce, 'base64').length).toBe(24);
    });

    it('decrypts with "hello" to a P-256 key with the documented public SPKI', () => {
      const k = parsePrivateKey(pem, 'hello', 'cosign.key');
      expect(k.publicKey.algorithm).toBe('ecdsa-p256');
      expect(k.publicKey.spki.toString('base64')).toBe(
        'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7z9gA/tqa9iHt/f9F3ulyVi4lwqULfHWfhG2mK4eyJ8LDcLstb+VVhxj3pkMjc3fNo+sSfiIY2NLR7c+DG1V4w==',
      );
      const sig = signRaw(k.privateKey, Buffer.from('x'), 'cosign.key');
      expect(verifyRawSignature(k.publicKey, Buffer.from('x'), sig)).toBe(true);
    });

    it('refuses any other password with KEY_DECRYPT_FAILED naming the file', () => {
      for (const pw of ['', 'Hello', 'hello ']) {
        const e = thrown(() => parsePrivateKey(pem, pw, '/keys/cosign.key'));
        expect(isPromoteError(e, 'KEY_DECRYPT_FAILED')).toBe(true);
        expect((e as Error).message).toContain('/keys/cosign.key');
      }
    });

    it('loads from a file', async () => {
      const k = await loadPrivateKey(`${FIXTURE_DIR}cosign-keys_test.sigstore-hello.key`, 'hello');
      expect(k.source).toContain('cosign-keys_test.sigstore-hello.key');
    });
  });

  describe('when encrypting and decrypting', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    it.each(SCRYPT_N_VALUES.map((n) => [n]))('round-trips with N=%i', (n) => {
      const pem = encryptPrivateKey(privateKey, 'pw', { scryptN: n });
      expect(pem).toMatch(/^-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n/);
      const body = JSON.parse(Buffer.from(pem.split('\n').slice(1, -2).join(''), 'base64').toString()) as { kdf: { params: { N: number } } };
      expect(body.kdf.params.N).toBe(n);
      const k = parsePrivateKey(pem, 'pw', 'k');
      expect(k.privateKey.export({ format: 'der', type: 'pkcs8' }).equals(privateKey.export({ format: 'der', type: 'pkcs8' }))).toBe(true);
    });

    it('accepts the older ENCRYPTED COSIGN PRIVATE KEY type and an empty password', () => {
      const pem = encryptPrivateKey(privateKey, '', { scryptN: 32768, pemType: COSIGN_PRIVATE_KEY_PEM });
      expect(pem).toContain('BEGIN ENCRYPTED COSIGN PRIVATE KEY');
      expect(parsePrivateKey(pem, '', 'k').publicKey.algorithm).toBe('ecdsa-p256');
    });

    it('refuses an N outside 32768, 65536, 131072 with KEY_INVALID', () => {
      const pem = encryptPrivateKey(privateKey, 'pw', { scryptN: 32768 });
      const body = Buffer.from(pem.split('\n').slice(1, -2).join(''), 'base64').toString().replace('"N":32768', '"N":16384');
      const forged = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${Buffer.from(body).toString('base64')}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
      expect(isPromoteError(thrown(() => parsePrivateKey(forged, 'pw', 'k')), 'KEY_INVALID')).toBe(true);
    });

    it('refuses a body that is not JSON with KEY_INVALID', () => {
      const pem = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${Buffer.from('nope').toString('base64')}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
      expect(isPromoteError(thrown(() => parsePrivateKey(pem, 'pw', 'k')), 'KEY_INVALID')).toBe(true);
    });
  });

  describe('when given plain private keys', () => {
    it.each([
      ['PRIVATE KEY', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' })],
      ['EC PRIVATE KEY', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'sec1' })],
      ['RSA PRIVATE KEY', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs1' })],
    ])('reads %s', (type, make) => {
      const pem = make() as string;
      expect(pem).toContain(`BEGIN ${type}`);
      const k = parsePrivateKey(pem, '', 'k');
      expect(signRaw(k.privateKey, Buffer.from('x'), 'k').length).toBeGreaterThan(0);
    });

    it('refuses to sign with a P-384 key (hash ambiguity across cosign releases)', () => {
      const pem = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
      const k = parsePrivateKey(pem, '', 'p384.key');
      expect(isPromoteError(thrown(() => signRaw(k.privateKey, Buffer.from('x'), 'p384.key')), 'KEY_INVALID')).toBe(true);
    });

    it('refuses PEM garbage with KEY_INVALID', () => {
      expect(isPromoteError(thrown(() => parsePrivateKey('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', '', 'k')), 'KEY_INVALID')).toBe(true);
      expect(isPromoteError(thrown(() => parsePrivateKey('garbage', '', 'k')), 'KEY_INVALID')).toBe(true);
    });
  });
});

describe('generateKeyPair', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cosign-keys-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('when given an output prefix', () => {
    it('writes cosign.key (0600, N=65536) and cosign.pub that belong together', async () => {
      const pair = await generateKeyPair('secret', { outputKeyPrefix: join(dir, 'cosign') });
      expect(pair.files).toEqual({ privateKey: join(dir, 'cosign.key'), publicKey: join(dir, 'cosign.pub') });
      expect((await stat(join(dir, 'cosign.key'))).mode & 0o777).toBe(0o600);
      const priv = await loadPrivateKey(join(dir, 'cosign.key'), 'secret');
      const pub = await loadPublicKey(join(dir, 'cosign.pub'));
      expect(priv.publicKey.keyId).toBe(pub.keyId);
      expect(pub.keyId).toBe(pair.keyId);
      const text = await readFile(join(dir, 'cosign.key'), 'utf8');
      const body = JSON.parse(Buffer.from(text.split('\n').slice(1, -2).join(''), 'base64').toString()) as { kdf: { params: { N: number } } };
      expect(body.kdf.params.N).toBe(65536);
    });

    it('writes N=32768 keys for cosign ≤ 2.1 when asked', async () => {
      const pair = await generateKeyPair('secret', { scryptN: 32768 });
      const body = JSON.parse(Buffer.from(pair.privateKeyPem.split('\n').slice(1, -2).join(''), 'base64').toString()) as { kdf: { params: { N: number } } };
      expect(body.kdf.params.N).toBe(32768);
    });

    it('refuses to overwrite an existing key file', async () => {
      await writeFile(join(dir, 'cosign.key'), 'old');
      await expect(generateKeyPair('x', { outputKeyPrefix: join(dir, 'cosign') })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(await readFile(join(dir, 'cosign.key'), 'utf8')).toBe('old');
    });
  });
});
