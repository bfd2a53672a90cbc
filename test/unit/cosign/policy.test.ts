import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadPolicy, rulesFor } from '../../../src/cosign/index.js';
import { FIXTURE_DIR, fixtureText } from './fixture-files.js';

const load = (doc: unknown) => loadPolicy(doc, { baseDir: FIXTURE_DIR });

describe('loadPolicy', () => {
  describe('when given a minimal key policy', () => {
    it('fills the documented defaults', async () => {
      const p = await load({ authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }] });
      expect(p.authorities).toHaveLength(1);
      expect(p.authorities[0]?.name).toBe('authority-1');
      expect(p.authorities[0]?.tlog).toBe('ignore');
      expect(p.authorities[0]?.keys[0]?.source).toBe(`${FIXTURE_DIR}ci-cosign.pub`);
      expect(p.threshold).toBe(1);
      expect(p.scope).toBe('bundle');
      expect(p.annotations).toEqual({});
      expect(p.attestations).toEqual([]);
      expect(p.dockerReference).toEqual({ match: 'off' });
      expect(p.checkType).toBe(false);
      expect(p.signaturePredicateTypes).toEqual(['https://sigstore.dev/cosign/sign/v1']);
    });
  });

  describe('when an authority sets no tlog mode', () => {
    it('requires transparency-log evidence when it names log keys', async () => {
      const p = await load({ authorities: [{ keys: ['ci-cosign.pub'], rekorKeys: ['ci-rekor.pub'] }] });
      expect(p.authorities[0]?.tlog).toBe('require');
    });

    it('refuses a policy with no log keys, naming tlog and the tlog: ignore opt-out', async () => {
      await expect(load({ authorities: [{ keys: ['ci-cosign.pub'] }] })).rejects.toMatchObject({
        code: 'POLICY_INVALID',
        message: expect.stringMatching(/policy authorities\[0\]\.tlog: not set: transparency-log evidence is required by default.*tlog: ignore/),
      });
    });

    it('refuses an explicit if-present without log keys (stripped evidence would pass)', async () => {
      await expect(load({ authorities: [{ keys: ['ci-cosign.pub'], tlog: 'if-present' }] })).rejects.toMatchObject({
        code: 'POLICY_INVALID',
        message: expect.stringMatching(/policy authorities\[0\]\.tlog: "if-present" needs log keys/),
      });
    });

    it('keeps an explicit if-present when log keys are named', async () => {
      const p = await load({ authorities: [{ keys: ['ci-cosign.pub'], tlog: 'if-present', rekorKeys: ['ci-rekor.pub'] }] });
      expect(p.authorities[0]?.tlog).toBe('if-present');
    });
  });

  describe('when given separate rules for the bundle and the images', () => {
    it('reads bundle and images rules into one model and picks an image rule by repository glob', async () => {
      const p = await load(parseYaml(`
scope: all
bundle:
  authorities: [{name: release, keys: [ci-cosign.pub], tlog: ignore}]
  annotations: {e2e-tests-passed: "True"}
images:
  - match: registry.dev/team/*
    authorities: [{name: build, keys: [ci-cosign2.pub], tlog: ignore}]
  - match: registry.dev/**
    authorities: [{name: any, keys: [ci-cosign.pub], tlog: ignore}]
    threshold: 1
`));
      expect(p.authorities.map((a) => a.name)).toEqual(['release']);
      expect(p.annotations).toEqual({ 'e2e-tests-passed': 'True' });
      expect(rulesFor(p, { kind: 'bundle', repository: 'registry.dev/team/app' })?.authorities.map((a) => a.name)).toEqual(['release']);
      expect(rulesFor(p, { kind: 'image', repository: 'registry.dev/team/app' })?.authorities.map((a) => a.name)).toEqual(['build']);
      expect(rulesFor(p, { kind: 'image', repository: 'registry.dev/team/app/sub' })?.authorities.map((a) => a.name)).toEqual(['any']);
      expect(rulesFor(p, { kind: 'image', repository: 'registry.other/team/app' })).toBeUndefined();
    });

    it('applies the flat form to the bundle, and to images when there is no images section', async () => {
      const p = await load({ authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }], scope: 'all' });
      expect(p.images).toEqual([]);
      expect(rulesFor(p, { kind: 'image', repository: 'x/y' })).toBe(p);
    });
  });

  describe('when given a full YAML policy', () => {
    it('reads keys inline and from files, trust material, attestations and the threshold', async () => {
      const yaml = `
authorities:
  - name: ci
    keys: [ci-cosign.pub]
    tlog: require
    rekorKeys: [ci-rekor.pub]
  - name: release
    keys:
      - |
${fixtureText('ci-cosign2.pub').split('\n').map((l) => `        ${l}`).join('\n')}
    trustedRoot: cosign-trusted_root_pgi.json
  - name: people
    keyless:
      identityRegExp: '@example\\.com$'
      issuer: https://github.com/login/oauth
      trustedRoot: cosign-trusted_root_pgi.json
annotations:
  e2e-tests-passed: "True"
threshold: 2
scope: all
attestations:
  - predicateType: https://slsa.dev/provenance/v1
dockerReference: { match: repository, reference: registry.example.com/app }
checkType: true
`;
      const p = await load(parseYaml(yaml));
      expect(p.authorities.map((a) => a.name)).toEqual(['ci', 'release', 'people']);
      expect(p.authorities[0]?.trust.tlogs).toHaveLength(1);
      expect(p.authorities[1]?.keys[0]?.source).toContain('inline');
      expect(p.authorities[2]?.keyless?.identityRegExp?.test('a@example.com')).toBe(true);
      expect(p.annotations).toEqual({ 'e2e-tests-passed': 'True' });
      expect(p.threshold).toBe(2);
      expect(p.scope).toBe('all');
      expect(p.attestations).toEqual([{ predicateType: 'https://slsa.dev/provenance/v1' }]);
      expect(p.dockerReference).toEqual({ match: 'repository', reference: 'registry.example.com/app' });
    });
  });

  describe('when the policy is invalid', () => {
    it.each([
      ['a non-object', 'x', '(document)'],
      ['no authorities', { authorities: [] }, 'authorities'],
      ['an unknown top-level field', { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }], treshold: 1 }, 'treshold'],
      ['an unknown authority field', { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore', key: 'x' }] }, 'authorities[0].key'],
      ['an unreadable key file', { authorities: [{ keys: ['missing.pub'] }] }, 'authorities[0].keys[0]'],
      ['a garbage key', { authorities: [{ keys: ['-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----'] }] }, 'authorities[0].keys[0]'],
      ['neither keys nor keyless', { authorities: [{ name: 'x' }] }, 'authorities[0]'],
      ['a bad tlog mode', { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'always' }] }, 'authorities[0].tlog'],
      ['tlog require without log keys', { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'require' }] }, 'authorities[0].tlog'],
      ['keyless without a trusted root', { authorities: [{ keyless: { identity: 'a', issuer: 'b' } }] }, 'authorities[0].keyless.trustedRoot'],
      ['keyless with both identity forms', { authorities: [{ keyless: { identity: 'a', identityRegExp: 'b', issuer: 'c', trustedRoot: 'cosign-trusted_root_pgi.json' } }] }, 'authorities[0].keyless'],
      ['a bad regular expression', { authorities: [{ keyless: { identityRegExp: '(', issuer: 'c', trustedRoot: 'cosign-trusted_root_pgi.json' } }] }, 'authorities[0].keyless.identityRegExp'],
      ['a boolean annotation (YAML True)', { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }], annotations: { 'e2e-tests-passed': true } }, 'annotations.e2e-tests-passed'],
      ['a threshold above the authority count', { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }], threshold: 2 }, 'threshold'],
      ['a zero threshold', { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }], threshold: 0 }, 'threshold'],
      ['a bad scope', { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }], scope: 'some' }, 'scope'],
      ['duplicate names', { authorities: [{ name: 'a', keys: ['ci-cosign.pub'], tlog: 'ignore' }, { name: 'a', keys: ['ci-cosign2.pub'], tlog: 'ignore' }] }, 'authorities[1].name'],
      ['an attestation without a type', { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }], attestations: [{}] }, 'attestations[0].predicateType'],
      ['a bad docker-reference mode', { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }], dockerReference: 'loose' }, 'dockerReference'],
      ['both the flat form and bundle', { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }], bundle: { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }] } }, 'authorities'],
      ['images without scope all', { bundle: { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }] }, images: [{ match: 'r/*', authorities: [{ keys: ['ci-cosign2.pub'], tlog: 'ignore' }] }] }, 'images'],
      ['an image rule without match', { scope: 'all', bundle: { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }] }, images: [{ authorities: [{ keys: ['ci-cosign2.pub'], tlog: 'ignore' }] }] }, 'images[0].match'],
      ['an image authority without tlog or log keys', { scope: 'all', bundle: { authorities: [{ keys: ['ci-cosign.pub'], tlog: 'ignore' }] }, images: [{ match: 'r/*', authorities: [{ keys: ['ci-cosign2.pub'] }] }] }, 'images[0].authorities[0].tlog'],
      ['a missing trusted root file', { authorities: [{ keys: ['ci-cosign.pub'], trustedRoot: 'nope.json' }] }, 'authorities[0].trustedRoot'],
    ])('refuses %s with POLICY_INVALID naming the field', async (_what, doc, field) => {
      await expect(load(doc)).rejects.toMatchObject({ code: 'POLICY_INVALID', message: expect.stringContaining(`policy ${field}`) });
    });

    it('tells the YAML user to quote a boolean annotation', async () => {
      await expect(load(parseYaml('authorities: [{keys: [ci-cosign.pub], tlog: ignore}]\nannotations: {e2e-tests-passed: True}'))).rejects.toThrow(/quote it in YAML: "true"/);
    });
  });
});
