/** A registry's answer to "who are you": Basic, or Bearer with a token server. */
export type AuthChallenge =
  | { readonly scheme: 'basic'; readonly realm?: string }
  | {
      readonly scheme: 'bearer';
      readonly realm: string;
      readonly service?: string;
      /** Scopes the registry asked for (space-separated inside one `scope="…"`), e.g. `repository:app:pull`. */
      readonly scopes: readonly string[];
      /** `insufficient_scope`, `invalid_token`, … */
      readonly error?: string;
    };

/**
 * Parses `WWW-Authenticate` (RFC 7235): `Bearer realm="…",service="…",scope="a b"`. Quoted values may hold
 * commas and `\"`; several challenges may share one header or come as several headers. A usable Bearer
 * challenge wins over Basic; `undefined` when nothing usable is there.
 */
export function parseAuthChallenge(header: string | readonly string[] | undefined): AuthChallenge | undefined {
  const values = header === undefined ? [] : typeof header === 'string' ? [header] : header;
  const challenges = values.flatMap(splitChallenges);
  let basic: AuthChallenge | undefined;
  for (const { scheme, params } of challenges) {
    if (scheme === 'bearer' && params.realm) {
      return {
        scheme: 'bearer',
        realm: params.realm,
        scopes: (params.scope ?? '').split(' ').filter((s) => s !== ''),
        ...(params.service !== undefined && { service: params.service }),
        ...(params.error !== undefined && { error: params.error }),
      };
    }
    if (scheme === 'basic') basic ??= { scheme: 'basic', ...(params.realm !== undefined && { realm: params.realm }) };
  }
  return basic;
}

interface RawChallenge {
  scheme: string;
  params: Record<string, string>;
}

/** A tiny tokenizer: `scheme param=value, param="quoted, value", scheme2 …`. */
function splitChallenges(header: string): RawChallenge[] {
  const out: RawChallenge[] = [];
  let i = 0;
  const n = header.length;
  const skip = (chars: string): void => {
    while (i < n && chars.includes(header[i] ?? '')) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && !' \t,="'.includes(header[i] ?? '')) i++;
    return header.slice(start, i);
  };
  let current: RawChallenge | undefined;
  while (i < n) {
    skip(' \t,');
    const word = token();
    if (word === '') {
      i++; // stray character: skip it rather than loop forever
      continue;
    }
    skip(' \t');
    if (header[i] === '=' && current !== undefined) {
      i++;
      skip(' \t');
      let value: string;
      if (header[i] === '"') {
        i++;
        value = '';
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote
      } else {
        value = token();
      }
      current.params[word.toLowerCase()] = value;
    } else {
      current = { scheme: word.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

/** `repository:<name>:<actions>`; the grammar token servers expect. */
export function repositoryScope(repository: string, actions: readonly string[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/**
 * Does a token granted for `granted` also cover `wanted`? A `pull,push` token covers `pull` on the same
 * resource; this lets one token serve reads and writes of a repository.
 */
export function scopesCover(granted: readonly string[], wanted: readonly string[]): boolean {
  const have = actionsByResource(granted);
  for (const [resource, actions] of actionsByResource(wanted)) {
    const got = have.get(resource);
    if (got === undefined) return false;
    for (const action of actions) if (!got.has(action) && !got.has('*')) return false;
  }
  return true;
}

/** Merges scopes per resource: `repository:a:pull` + `repository:a:push` → `repository:a:pull,push`. */
export function mergeScopes(scopes: readonly string[]): string[] {
  return [...actionsByResource(scopes)].map(([resource, actions]) => `${resource}:${[...actions].sort().join(',')}`).sort();
}

function actionsByResource(scopes: readonly string[]): Map<string, Set<string>> {
  const map = new Map<string, Set<string>>();
  for (const scope of scopes) {
    // The resource name may itself contain ':' (a registry with a port in some token servers), so split at the last one.
    const cut = scope.lastIndexOf(':');
    const resource = cut < 0 ? scope : scope.slice(0, cut);
    const actions = cut < 0 ? [] : scope.slice(cut + 1).split(',').filter((a) => a !== '');
    let set = map.get(resource);
    if (set === undefined) map.set(resource, (set = new Set()));
    for (const a of actions) set.add(a);
  }
  return map;
}
