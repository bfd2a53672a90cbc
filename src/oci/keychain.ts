/** What a registry (or its token server) is shown. Never logged, never put into a message. */
export type Credential =
  | { readonly username: string; readonly password: string }
  /** An OAuth2 refresh token (docker config `identitytoken`), exchanged at the token server by POST. */
  | { readonly identityToken: string }
  /** A bearer token sent as is (docker config `registrytoken`). */
  | { readonly registryToken: string };

/** Finds the credential for a registry host (`index.docker.io`, `ghcr.io`, `127.0.0.1:5000`). */
export interface Keychain {
  resolve(registry: string): Promise<Credential | undefined>;
  /**
   * Drops whatever is cached for `registry` (a config file read once), so that the next `resolve` reads
   * afresh: called when the registry refused credentials that may have expired meanwhile.
   */
  forget?(registry: string): void;
}

/** `https://index.docker.io/v1/`, `docker.io`, `Registry-1.Docker.io` → `index.docker.io`; others lose scheme and path. */
export function registryKey(s: string): string {
  const host = s.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '').split('/')[0]?.toLowerCase() ?? '';
  return host === 'docker.io' || host === 'registry-1.docker.io' ? 'index.docker.io' : host;
}

/** Nobody: every registry is spoken to anonymously. */
export const anonymousKeychain: Keychain = { resolve: () => Promise.resolve(undefined) };

/**
 * Explicit credentials (`--registry-username/--registry-password`), for every registry or only for `hosts`.
 */
export function staticKeychain(credential: Credential, options: { hosts?: readonly string[] } = {}): Keychain {
  const hosts = options.hosts === undefined ? undefined : new Set(options.hosts.map(registryKey));
  return {
    resolve: (registry) => Promise.resolve(hosts === undefined || hosts.has(registryKey(registry)) ? credential : undefined),
  };
}

/** The first keychain that knows the registry wins. */
export function chainKeychains(...keychains: readonly Keychain[]): Keychain {
  return {
    forget(registry) {
      for (const keychain of keychains) keychain.forget?.(registry);
    },
    async resolve(registry) {
      for (const keychain of keychains) {
        const credential = await keychain.resolve(registry);
        if (credential !== undefined) return credential;
      }
      return undefined;
    },
  };
}
