import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CRD_FILE, PATTERN_HINTS, readOpenApiSchema, validatePromotionDocument } from '../../../src/sources/crd-schema.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const where = { file: 'promotions/prod.yaml', index: 1 };

function promotion(spec: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'bundlepromoter.dev/v1alpha1',
    kind: 'BundlePromotion',
    metadata: { name: 'useful-bundle-prod', namespace: 'delivery' },
    spec,
    ...extra,
  };
}

const minimalSpec = () => ({
  source: { bundle: 'registry.example.com/useful-bundle-dev-repo:1.0.0' },
  target: { repository: 'registry.example.com/useful-bundle-test-repo' },
});

const keyAuthority = { keys: [{ secretRef: { name: 'bundle-signing-key', key: 'cosign.pub' } }] };

function errorsOf(doc: unknown): readonly string[] {
  const result = validatePromotionDocument(doc, where);
  if (result.ok) throw new Error('expected the document to be rejected');
  return result.errors;
}

function specOf(doc: unknown) {
  const result = validatePromotionDocument(doc, where);
  if (!result.ok) throw new Error(`expected the document to be valid: ${result.errors.join('\n')}`);
  return result.spec;
}

describe('validatePromotionDocument', () => {
  describe('when a minimal document is valid', () => {
    it('fills the schema defaults and returns the metadata', () => {
      const result = validatePromotionDocument(promotion(minimalSpec()), where);
      expect(result).toEqual({
        ok: true,
        metadata: { name: 'useful-bundle-prod', namespace: 'delivery' },
        spec: {
          ...minimalSpec(),
          copy: { signatures: true, concurrency: 8 },
          interval: '5m',
          suspend: false,
          historyLimit: 10,
        },
      });
    });

    it('leaves the input untouched', () => {
      const doc = promotion(minimalSpec());
      const before = structuredClone(doc);
      validatePromotionDocument(doc, where);
      expect(doc).toEqual(before);
    });
  });

  describe('when verify is given', () => {
    it('fills source, target, threshold and scope and keeps the policy fields', () => {
      const spec = specOf(promotion({ ...minimalSpec(), verify: { annotations: { 'e2e-tests-passed': 'True' }, authorities: [keyAuthority] } }));
      expect(spec.verify).toEqual({
        source: true,
        target: true,
        threshold: 1,
        scope: 'bundle',
        annotations: { 'e2e-tests-passed': 'True' },
        authorities: [keyAuthority],
      });
    });

    it('accepts keyless authorities, trusted roots, Rekor keys, attestations and dockerReference', () => {
      const spec = specOf(
        promotion({
          ...minimalSpec(),
          verify: {
            authorities: [
              {
                name: 'people',
                keyless: { identityRegExp: '@example\\.com$', issuer: 'https://accounts.example.com', trustedRoot: { configMapRef: { name: 'sigstore', key: 'trusted_root.json' } } },
                tlog: 'require',
                rekorKeys: [{ pem: '-----BEGIN PUBLIC KEY-----\n…' }],
              },
            ],
            attestations: [{ predicateType: 'https://slsa.dev/provenance/v1' }],
            dockerReference: { match: 'repository' },
            checkType: true,
            signaturePredicateTypes: ['https://sigstore.dev/cosign/sign/v1'],
          },
        }),
      );
      expect(spec.verify?.authorities?.[0]?.keyless?.issuer).toBe('https://accounts.example.com');
    });
  });

  describe('when a field is unknown', () => {
    it('rejects it (the apiserver would prune it silently) and suggests the near name', () => {
      expect(errorsOf(promotion({ ...minimalSpec(), verify: { authorities: [{ ...keyAuthority, tlogg: 'ignore' }] } }))).toEqual([
        'promotions/prod.yaml document 2: spec.verify.authorities[0].tlogg: unknown field (did you mean "tlog"?)',
      ]);
    });

    it('rejects an unknown key in verify', () => {
      expect(errorsOf(promotion({ ...minimalSpec(), verify: { authorities: [keyAuthority], requireAnnotations: {} } }))).toEqual([
        'promotions/prod.yaml document 2: spec.verify.requireAnnotations: unknown field (allowed: source, target, scope, annotations, threshold, authorities, bundle, images, attestations, dockerReference, checkType, signaturePredicateTypes)',
      ]);
    });

    it('lists the allowed fields when no name is near', () => {
      expect(errorsOf(promotion({ ...minimalSpec(), verfication: {} }))).toEqual([
        'promotions/prod.yaml document 2: spec.verfication: unknown field (allowed: source, target, copy, verify, registry, interval, suspend, historyLimit)',
      ]);
    });

    it('rejects a misspelt verify as a typo, not as "no verification"', () => {
      expect(errorsOf(promotion({ ...minimalSpec(), verfy: { authorities: [keyAuthority] } }))).toEqual([
        'promotions/prod.yaml document 2: spec.verfy: unknown field (did you mean "verify"?)',
      ]);
    });

    it('rejects unknown metadata and top-level fields too', () => {
      const errors = errorsOf({ ...promotion(minimalSpec()), metadata: { name: 'a', annotation: {} }, specs: {} });
      expect(errors).toContain('promotions/prod.yaml document 2: metadata.annotation: unknown field (did you mean "annotations"?)');
      expect(errors).toContain('promotions/prod.yaml document 2: specs: unknown field (did you mean "spec"?)');
    });
  });

  describe('when an enum value is wrong', () => {
    it('names the file, the document, the field path and the allowed values', () => {
      const errors = errorsOf(promotion({ ...minimalSpec(), verify: { authorities: [{ ...keyAuthority, tlog: 'optional' }] } }));
      expect(errors).toEqual([
        'promotions/prod.yaml document 2: spec.verify.authorities[0].tlog: must be one of require, if-present, ignore (got "optional")',
      ]);
    });

    it('checks copy.include items and dockerReference.match', () => {
      const errors = errorsOf(promotion({ ...minimalSpec(), copy: { include: ['att', 'sig'] }, verify: { authorities: [keyAuthority], dockerReference: { match: 'strict' } } }));
      expect(errors).toEqual([
        'promotions/prod.yaml document 2: spec.copy.include[1]: must be one of att, sbom, referrers (got "sig")',
        'promotions/prod.yaml document 2: spec.verify.dockerReference.match: must be one of off, exact, repository (got "strict")',
      ]);
    });
  });

  describe('when "exactly one of" is broken', () => {
    it('rejects both bundle and fromPromotion', () => {
      const errors = errorsOf(promotion({ ...minimalSpec(), source: { bundle: 'registry.example.com/a:1', fromPromotion: { name: 'up' } } }));
      expect(errors).toEqual(['promotions/prod.yaml document 2: spec.source: needs exactly one of bundle, fromPromotion (bundle and fromPromotion are set)']);
    });

    it('rejects neither bundle nor fromPromotion', () => {
      const errors = errorsOf(promotion({ ...minimalSpec(), source: { credentials: { secretRef: { name: 'c' } } } }));
      expect(errors).toEqual(['promotions/prod.yaml document 2: spec.source: needs exactly one of bundle, fromPromotion (none is set)']);
    });

    it('rejects a key source with two of secretRef, configMapRef and pem', () => {
      const key = { pem: '-----BEGIN PUBLIC KEY-----', configMapRef: { name: 'k', key: 'cosign.pub' } };
      expect(errorsOf(promotion({ ...minimalSpec(), verify: { authorities: [{ keys: [key] }] } }))).toEqual([
        'promotions/prod.yaml document 2: spec.verify.authorities[0].keys[0]: needs exactly one of secretRef, configMapRef, pem (configMapRef and pem are set)',
      ]);
    });

    it('rejects an authority with both keys and keyless, and a keyless identity given twice', () => {
      const authority = { ...keyAuthority, keyless: { identity: 'a@example.com', identityRegExp: 'a', issuerRegExp: 'x' } };
      expect(errorsOf(promotion({ ...minimalSpec(), verify: { authorities: [authority] } }))).toEqual([
        'promotions/prod.yaml document 2: spec.verify.authorities[0]: needs exactly one of keys, keyless (keys and keyless are set)',
        'promotions/prod.yaml document 2: spec.verify.authorities[0].keyless: needs exactly one of identity, identityRegExp (identity and identityRegExp are set)',
      ]);
    });
  });

  describe('when a required field is missing', () => {
    it('names it', () => {
      expect(errorsOf(promotion({ source: minimalSpec().source, target: {} }))).toEqual([
        'promotions/prod.yaml document 2: spec.target.repository: is required',
      ]);
      expect(errorsOf(promotion({ ...minimalSpec(), verify: {} }))).toEqual(['promotions/prod.yaml document 2: spec.verify: needs exactly one of authorities, bundle (none is set)']);
    });

    it('requires apiVersion, kind and metadata.name, and pins apiVersion and kind', () => {
      expect(errorsOf({ spec: minimalSpec(), metadata: {} })).toEqual([
        'promotions/prod.yaml document 2: apiVersion: is required',
        'promotions/prod.yaml document 2: kind: is required',
        'promotions/prod.yaml document 2: metadata.name: is required',
      ]);
      expect(errorsOf(promotion(minimalSpec(), { apiVersion: 'bundlepromoter.dev/v1', kind: 'Promotion' }))).toEqual([
        'promotions/prod.yaml document 2: apiVersion: must be bundlepromoter.dev/v1alpha1 (got "bundlepromoter.dev/v1")',
        'promotions/prod.yaml document 2: kind: must be BundlePromotion (got "Promotion")',
      ]);
    });

    it('says so when the document is no object at all', () => {
      expect(errorsOf('spec: {}')).toEqual(['promotions/prod.yaml document 2: (document): must be an object, got string "spec: {}"']);
    });
  });

  describe('when references are checked', () => {
    it.each([
      'registry.example.com/useful-bundle-dev-repo:1.0.0',
      `registry.example.com/team/app@${DIGEST}`,
      `registry.example.com/team/app:1.0@${DIGEST}`,
      'localhost:5000/app:v1',
      '127.0.0.1:5000/a/b:latest',
      'nginx:1.27',
      '[::1]:5000/app:v1',
    ])('accepts the bundle %s', (bundle) => {
      expect(specOf(promotion({ ...minimalSpec(), source: { bundle } })).source.bundle).toBe(bundle);
    });

    it.each([
      ['no tag or digest', 'registry.example.com/app'],
      ['a short digest', 'registry.example.com/app@sha256:abc'],
      ['an uppercase path', 'registry.example.com/App:1'],
      ['a tag starting with "."', 'registry.example.com/app:.1'],
      ['whitespace', 'registry.example.com/app: 1'],
      ['a scheme', 'https://registry.example.com/app:1'],
    ])('rejects a bundle with %s', (_, bundle) => {
      expect(errorsOf(promotion({ ...minimalSpec(), source: { bundle } }))).toEqual([
        `promotions/prod.yaml document 2: spec.source.bundle: ${PATTERN_HINTS['bundle']} (got ${JSON.stringify(bundle)})`,
      ]);
    });

    it.each(['registry.example.com/app:1', `registry.example.com/app@${DIGEST}`, 'registry.example.com/App'])('rejects the target repository %s', (repository) => {
      expect(errorsOf(promotion({ ...minimalSpec(), target: { repository } }))).toEqual([
        `promotions/prod.yaml document 2: spec.target.repository: ${PATTERN_HINTS['repository']} (got ${JSON.stringify(repository)})`,
      ]);
    });

    it('checks target tags and insecure hosts', () => {
      const errors = errorsOf(promotion({ ...minimalSpec(), target: { repository: 'r.example.com/a', tags: ['v1', '-x'] }, registry: { insecure: ['localhost:5000', 'http://x'] } }));
      expect(errors).toEqual([
        `promotions/prod.yaml document 2: spec.target.tags[1]: ${PATTERN_HINTS['tags']} (got "-x")`,
        `promotions/prod.yaml document 2: spec.registry.insecure[1]: ${PATTERN_HINTS['insecure']} (got "http://x")`,
      ]);
    });
  });

  describe('when numbers are out of bounds', () => {
    it.each([
      [{ copy: { concurrency: 0 } }, 'spec.copy.concurrency: must be at least 1 (got 0)'],
      [{ copy: { concurrency: 65 } }, 'spec.copy.concurrency: must be at most 64 (got 65)'],
      [{ copy: { concurrency: 2.5 } }, 'spec.copy.concurrency: must be an integer, got number 2.5'],
      [{ historyLimit: 101 }, 'spec.historyLimit: must be at most 100 (got 101)'],
      [{ historyLimit: -1 }, 'spec.historyLimit: must be at least 0 (got -1)'],
      [{ verify: { authorities: [keyAuthority], threshold: 0 } }, 'spec.verify.threshold: must be at least 1 (got 0)'],
    ])('rejects %j', (extra, message) => {
      expect(errorsOf(promotion({ ...minimalSpec(), ...extra }))).toEqual([`promotions/prod.yaml document 2: ${message}`]);
    });
  });

  describe('when the interval is given', () => {
    it.each(['30s', '5m', '1h30m', '1.5h', '250ms'])('accepts the Go duration %s', (interval) => {
      expect(specOf(promotion({ ...minimalSpec(), interval })).interval).toBe(interval);
    });

    it.each(['5', '5 min', '1d', '-5m', ''])('rejects %j', (interval) => {
      expect(errorsOf(promotion({ ...minimalSpec(), interval }))).toEqual([
        `promotions/prod.yaml document 2: spec.interval: ${PATTERN_HINTS['interval']} (got ${JSON.stringify(interval)})`,
      ]);
    });
  });

  describe('when YAML turned an annotation value into a boolean', () => {
    it('asks for quotes', () => {
      const doc = parseYaml(`
apiVersion: bundlepromoter.dev/v1alpha1
kind: BundlePromotion
metadata: {name: p}
spec:
  source: {fromPromotion: {name: useful-bundle-test}}
  target: {repository: registry.example.com/useful-bundle-prod-repo}
  verify:
    annotations:
      e2e-tests-passed: True
    authorities: [{keys: [{secretRef: {name: k, key: cosign.pub}}]}]
`);
      expect(errorsOf(doc)).toEqual([
        'promotions/prod.yaml document 2: spec.verify.annotations.e2e-tests-passed: must be a string, got boolean true; quote it in YAML: "true"',
      ]);
    });
  });

  describe('when a field is null (an empty YAML key)', () => {
    it('treats it as absent, like the apiserver', () => {
      const spec = specOf(parseYaml(`
apiVersion: bundlepromoter.dev/v1alpha1
kind: BundlePromotion
metadata: {name: p}
spec:
  source: {bundle: "registry.example.com/a:1"}
  target: {repository: registry.example.com/b}
  copy:
  verify:
`));
      expect(spec.verify).toBeUndefined();
      expect(spec.copy).toEqual({ signatures: true, concurrency: 8 });
    });
  });

  describe('when metadata has annotations and server-set fields (kubectl get -o yaml)', () => {
    it('accepts them and returns the annotations', () => {
      const result = validatePromotionDocument(
        promotion(minimalSpec(), {
          metadata: { name: 'p', uid: 'u', resourceVersion: '1', generation: 2, annotations: { 'bundlepromoter.dev/requestedAt': 'now' } },
          status: { phase: 'Succeeded', observedGeneration: 2 },
        }),
        where,
      );
      expect(result.ok && result.metadata).toEqual({ name: 'p', annotations: { 'bundlepromoter.dev/requestedAt': 'now' } });
    });

    it('quotes an annotation key that is no identifier', () => {
      expect(errorsOf(promotion(minimalSpec(), { metadata: { name: 'p', annotations: { 'example.com/x': 1 } } }))).toEqual([
        'promotions/prod.yaml document 2: metadata.annotations["example.com/x"]: must be a string, got number 1; quote it in YAML: "1"',
      ]);
    });
  });
});

describe('the CRD schema', () => {
  const schema = readOpenApiSchema(CRD_FILE);

  type Node = Record<string, unknown> & { properties?: Record<string, Node>; items?: Node };
  function* fields(node: Node, path: string): Generator<[string, Node, string]> {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      yield [`${path}.${name}`, child, name];
      yield* fields(child, `${path}.${name}`);
      if (child.items !== undefined) {
        yield [`${path}.${name}[]`, child.items, name];
        yield* fields(child.items, `${path}.${name}[]`);
      }
    }
  }

  it('is found beside src/ (and beside dist/ once built)', () => {
    expect(existsSync(CRD_FILE)).toBe(true);
  });

  it('describes every field of spec and status (the README reference is built from the descriptions)', () => {
    const missing = [...fields(schema as Node, '')]
      .filter(([path, node]) => !path.endsWith('[]') && path !== '.metadata' && typeof node['description'] !== 'string')
      .map(([path]) => path);
    expect(missing).toEqual([]);
  });

  it('has a readable message for every pattern', () => {
    const withoutHint = [...fields(schema as Node, '')]
      .filter(([, node, name]) => node['pattern'] !== undefined && PATTERN_HINTS[name] === undefined)
      .map(([path]) => path);
    expect(withoutHint).toEqual([]);
  });

  it('keeps its oneOf branches to `required` lists (the structural-schema rule)', () => {
    const bad: string[] = [];
    const visit = (node: unknown, path: string): void => {
      if (Array.isArray(node)) return node.forEach((n, i) => visit(n, `${path}[${i}]`));
      if (typeof node !== 'object' || node === null) return;
      for (const [k, v] of Object.entries(node)) {
        if (k === 'oneOf' || k === 'allOf' || k === 'anyOf') {
          for (const branch of v as Record<string, unknown>[]) {
            const keys = Object.keys(branch).filter((key) => key !== 'required' && key !== 'oneOf');
            if (keys.length > 0) bad.push(`${path}.${k}: ${keys.join(',')}`);
          }
        }
        visit(v, `${path}.${k}`);
      }
    };
    visit(schema, '');
    expect(bad).toEqual([]);
  });
});
