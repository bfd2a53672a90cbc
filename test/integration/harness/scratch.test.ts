import { it, expect } from 'vitest';
import { readFile } from 'node:fs/promises';
import { startRegistry, trustCertificate } from '../../support/registry.js';

it('scratch', async () => {
  for (const opts of [{}, { auth: 'basic' as const }, { auth: 'token' as const, accessLog: true }, { tls: true, accessLog: true }]) {
    const t0 = Date.now();
    const r = await startRegistry(opts);
    console.log(opts, r.url, Date.now() - t0, 'ms');
    if (r.caFile) { trustCertificate(await readFile(r.caFile, 'utf8')); }
    const res = await fetch(`${r.url}/v2/`);
    console.log(res.status, res.headers.get('www-authenticate'));
    if (opts.accessLog) console.log(await r.requests());
    await r.stop(); await r.stop();
  }
  expect(1).toBe(1);
});
