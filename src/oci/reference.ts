import { PromoteError } from '../errors.js';
import { checkDigest } from './digest.js';
import type { Reference, Repository } from './types.js';

export const DOCKER_HUB = 'index.docker.io';

// The distribution reference grammar (distribution/reference regexp.go), split per part for clear messages.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6 = /^\[[a-fA-F0-9:]+\]$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const MAX_NAME = 255;

function invalid(input: string, why: string): PromoteError {
  return new PromoteError('INVALID_REFERENCE', `invalid reference "${input}": ${why}`);
}

/**
 * Parses `[registry/]repository[:tag][@digest]` like go-containerregistry: Docker Hub defaults
 * (`index.docker.io`, `library/`), a first segment is a registry when it has a `.` or `:` or is `localhost`.
 * Without tag and digest the tag is `latest`.
 */
export function parseReference(s: string): Reference {
  const { repo, tag, digest } = split(s);
  if (tag === undefined && digest === undefined) return { ...repo, tag: 'latest' };
  return { ...repo, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

/** Parses a repository (`--to-repo`): a tag or digest is an error, not something to drop silently. */
export function parseRepository(s: string): Repository {
  const { repo, tag, digest } = split(s);
  if (digest !== undefined) throw invalid(s, `a repository must not carry a digest ("@${digest}")`);
  if (tag !== undefined) throw invalid(s, `a repository must not carry a tag (":${tag}")`);
  return repo;
}

export function formatRepository(repo: Repository): string {
  return `${repo.registry}/${repo.repository}`;
}

export function formatReference(ref: Reference): string {
  return `${formatRepository(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

export function withDigest(repo: Repository, digest: string): Reference {
  checkDigest(digest, formatRepository(repo), 'INVALID_REFERENCE');
  return { registry: repo.registry, repository: repo.repository, digest };
}

export function withTag(repo: Repository, tag: string): Reference {
  if (!TAG.test(tag)) throw invalid(`${formatRepository(repo)}:${tag}`, badTag(tag));
  return { registry: repo.registry, repository: repo.repository, tag };
}

function badTag(tag: string): string {
  return `tag "${tag}" must match [A-Za-z0-9_][A-Za-z0-9._-]{0,127}`;
}

function split(input: string): { repo: Repository; tag?: string; digest?: string } {
  if (input === '') throw invalid(input, 'it is empty');
  if (/\s/.test(input)) throw invalid(input, 'it contains whitespace');

  let name = input;
  let digest: string | undefined;
  const at = input.indexOf('@');
  if (at >= 0) {
    name = input.slice(0, at);
    digest = input.slice(at + 1);
    if (digest === '') throw invalid(input, 'the digest after "@" is empty');
    checkDigest(digest, `invalid reference "${input}"`, 'INVALID_REFERENCE');
  }

  let tag: string | undefined;
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(input, badTag(tag));
  }

  if (name === '') throw invalid(input, 'the repository name is empty');
  const segments = name.split('/');
  let registry = DOCKER_HUB;
  const first = segments[0] ?? '';
  if (segments.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = checkRegistry(input, first);
    segments.shift();
  }
  if (registry === 'docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && segments.length === 1) segments.unshift('library');

  for (const component of segments) {
    if (component === '') throw invalid(input, 'the repository path has an empty component');
    if (PATH_COMPONENT.test(component)) continue;
    if (PATH_COMPONENT.test(component.toLowerCase())) {
      throw invalid(input, `repository path component "${component}" must be lowercase`);
    }
    throw invalid(input, `repository path component "${component}" must match [a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`);
  }
  const repository = segments.join('/');
  if (registry.length + 1 + repository.length > MAX_NAME) {
    throw invalid(input, `the name is longer than ${MAX_NAME} characters`);
  }
  return { repo: { registry, repository }, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

function checkRegistry(input: string, registry: string): string {
  let host = registry;
  const portMatch = /^(.*):([^:\]]*)$/.exec(registry);
  if (portMatch && !IPV6.test(registry)) {
    host = portMatch[1] ?? '';
    const port = portMatch[2] ?? '';
    if (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535) {
      throw invalid(input, `registry "${registry}" has an invalid port "${port}"`);
    }
  }
  const valid = IPV6.test(host) || (host !== '' && host.split('.').every((c) => DOMAIN_COMPONENT.test(c)));
  if (!valid) throw invalid(input, `registry "${registry}" is not a valid host name`);
  // Host names are case-insensitive; one spelling keeps credential and insecure-host look-ups simple.
  return registry.toLowerCase();
}
