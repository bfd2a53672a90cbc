import { describe, expect, it } from 'vitest';
import { normaliseRepository } from '../../../src/cosign/signature-checks.js';

// The repository match of the opt-in docker-reference check compares these (containers/image semantics).
describe('normaliseRepository', () => {
  it.each([
    ['registry.example.com/team/app:1.0', 'registry.example.com/team/app'],
    ['registry.example.com/team/app@sha256:0123', 'registry.example.com/team/app'],
    ['registry.example.com:5000/team/app:1.0@sha256:0123', 'registry.example.com:5000/team/app'],
    ['registry.example.com:5000/team/app', 'registry.example.com:5000/team/app'],
    ['host:5000/app:v1', 'host:5000/app'],
    ['localhost/app', 'localhost/app'],
    ['localhost:5000/app', 'localhost:5000/app'],
    ['a.b/c/d/e:tag', 'a.b/c/d/e'],
    ['registry.example.com/app', 'registry.example.com/app'],
    ['ubuntu', 'index.docker.io/library/ubuntu'],
    // A host needs a path after it: alone, a dotted name or localhost is a Docker Hub image.
    ['example.com', 'index.docker.io/library/example.com'],
    ['localhost', 'index.docker.io/library/localhost'],
    ['ubuntu:22.04', 'index.docker.io/library/ubuntu'],
    ['ubuntu@sha256:0123', 'index.docker.io/library/ubuntu'],
    ['team/app', 'index.docker.io/team/app'],
    ['docker.io/ubuntu', 'index.docker.io/library/ubuntu'],
    ['registry-1.docker.io/team/app:1', 'index.docker.io/team/app'],
    ['index.docker.io/library/ubuntu', 'index.docker.io/library/ubuntu'],
  ])('%s → %s', (ref, want) => {
    expect(normaliseRepository(ref)).toBe(want);
  });
});
