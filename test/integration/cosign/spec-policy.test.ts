import { describe, expect, it } from 'vitest';
import { rulesFor } from '../../../src/cosign/index.js';
import { policyFromSpec } from '../../../src/sources/verify-policy.js';
import type { VerifySpec } from '../../../src/sources/promotion.js';
import type { ConfigReader } from '../../../src/sources/ports.js';
import { fixtureText } from '../../unit/cosign/fixture-files.js';

// One policy model (issue #9 item 1): a BundlePromotion's spec.verify with bundle/images, key references
// resolved from Secrets, loads into the same Policy a --policy file does.

const release = fixtureText('ci-cosign.pub');
const build = fixtureText('ci-cosign2.pub');
const reader: ConfigReader = {
  secret: (_ns, name, key) => (name === 'keys' && key === 'build.pub' ? Promise.resolve(Buffer.from(build)) : Promise.reject(new Error(`no secret ${name}/${key}`))),
  configMap: () => Promise.reject(new Error('no config maps')),
};

describe('policyFromSpec', () => {
  describe('when spec.verify has bundle and images rules', () => {
    it('resolves every authority\'s keys and keeps the rules per kind of subject', async () => {
      // threshold: 1 is the CRD default the apiserver fills in beside bundle; it must not count as the flat form.
      const spec = {
        scope: 'all',
        threshold: 1,
        bundle: { authorities: [{ name: 'release', keys: [{ pem: release }], tlog: 'ignore' }], annotations: { 'e2e-tests-passed': 'True' } },
        images: [{ match: 'registry.dev.example/team/*', authorities: [{ name: 'build', keys: [{ secretRef: { name: 'keys', key: 'build.pub' } }], tlog: 'ignore' }] }],
      } as unknown as VerifySpec;
      const p = await policyFromSpec(spec, 'ns', reader);
      expect(p.authorities.map((a) => a.name)).toEqual(['release']);
      expect(p.annotations).toEqual({ 'e2e-tests-passed': 'True' });
      const image = rulesFor(p, { kind: 'image', repository: 'registry.dev.example/team/app' });
      expect(image?.authorities.map((a) => a.name)).toEqual(['build']);
      expect(image?.authorities[0]?.keys[0]?.source).toContain('inline');
      expect(image?.annotations).toEqual({});
    });

    it('refuses an explicit threshold beside bundle, naming the field', async () => {
      const spec = { threshold: 2, bundle: { authorities: [{ keys: [{ pem: release }], tlog: 'ignore' }] } } as unknown as VerifySpec;
      await expect(policyFromSpec(spec, 'ns', reader)).rejects.toMatchObject({ code: 'POLICY_INVALID', message: expect.stringContaining('spec.verify: policy threshold') });
    });
  });

  describe('when spec.verify sets no tlog mode and no log keys', () => {
    it('refuses the promotion, naming tlog and the opt-out', async () => {
      const spec = { authorities: [{ keys: [{ pem: release }] }] } as unknown as VerifySpec;
      await expect(policyFromSpec(spec, 'ns', reader)).rejects.toMatchObject({ code: 'POLICY_INVALID', message: expect.stringMatching(/spec\.verify: policy authorities\[0\]\.tlog: not set.*tlog: ignore/) });
    });
  });
});
