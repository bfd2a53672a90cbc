/**
 * Copy benchmark: bundle-promoter against skopeo, in the same run, on the same content.
 *
 * Content: a bundle of N images (default 100), each one of 5 shared 8 MiB base layers + 2 unique 1 MiB
 * layers, every image and the bundle signed (`.sig`). Cases:
 *   (a) cold copy to a second registry, (b) cold copy to another repository of the same registry,
 *   (c) an immediate re-copy (no-op), (d) one 1 GiB blob (peak RSS).
 * Peers: `skopeo copy --all --preserve-digests` of the same manifests, sequential and 4 in parallel.
 * Requests and uploaded bytes are counted from each registry's own access log, so both tools are measured
 * by the same independent meter. Run: `npm run bench` (env BENCH_IMAGES, BENCH_BIG_MIB to scale).
 */
import { execFile, spawn } from 'node:child_process';
import { rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry, type TestRegistry, type AccessLogEntry } from '../test/support/registry.js';
import { buildBigBlob, buildContent } from './content.js';

const IMAGES = Number(process.env['BENCH_IMAGES'] ?? 100);
const BIG_MIB = Number(process.env['BENCH_BIG_MIB'] ?? 1024);
const ROOT = process.cwd(); // npm run and make run from the package root
const CLI = join(ROOT, 'dist', 'cli.js');
const SKOPEO_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb';
const MiB = 1024 * 1024;

interface Measure { seconds: number; rssMiB: number; requests: number; uploadedMiB: number; blobGets: number }

async function timed(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ seconds: number; rssMiB: number; stdout: string }> {
  // GNU time reports the child's peak RSS (maxrss, KiB); wall time is measured here.
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '@@rss %M', command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const rss = /@@rss (\d+)/.exec(stderr);
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolvePromise({ seconds, rssMiB: Number(rss?.[1] ?? 0) / 1024, stdout });
    });
  });
}

async function meter(registries: TestRegistry[], sizes: Map<string, number>, work: () => Promise<{ seconds: number; rssMiB: number }>): Promise<Measure> {
  const before = await Promise.all(registries.map((r) => r.requests()));
  const { seconds, rssMiB } = await work();
  const after = await Promise.all(registries.map((r) => r.requests()));
  const fresh: AccessLogEntry[] = after.flatMap((entries, i) => entries.slice(before[i]!.length));
  const uploaded = fresh
    .filter((e) => e.method === 'PUT' && e.path.includes('/blobs/uploads/') && e.status === 201)
    .reduce((n, e) => n + (sizes.get(new URLSearchParams(e.query).get('digest') ?? '') ?? 0), 0);
  const blobGets = fresh.filter((e) => e.method === 'GET' && e.path.includes('/blobs/sha256:')).length;
  return { seconds, rssMiB, requests: fresh.length, uploadedMiB: uploaded / MiB, blobGets };
}

async function ours(src: TestRegistry, srcRepo: string, dst: TestRegistry, dstRepo: string, tag = 'v1'): Promise<{ seconds: number; rssMiB: number }> {
  const insecure = [...new Set([src.host, dst.host])].flatMap((h) => ['--registry-insecure', h]);
  return timed(process.execPath, [CLI, 'copy', '--bundle', `${src.host}/${srcRepo}:${tag}`, '--to-repo', `${dst.host}/${dstRepo}`, '--cosign-signatures', '--json', ...insecure]);
}

async function skopeo(src: TestRegistry, dst: TestRegistry, dstRepo: string, refs: string[], parallel: number): Promise<{ seconds: number; rssMiB: number }> {
  await rm(SKOPEO_CACHE, { force: true });
  const started = performance.now();
  let peak = 0;
  let next = 0;
  const worker = async () => {
    while (next < refs.length) {
      const ref = refs[next++]!;
      const name = ref.slice(ref.indexOf('/') + 1);
      const dstRef = name.includes('@') ? `${dstRepo}:${name.split('@')[1]!.replace(':', '-')}.imgpkg` : `${dstRepo}:${name.split(':').at(-1)!}`;
      const r = await timed('skopeo', ['copy', '--all', '--preserve-digests', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src.host}/${ref}`, `docker://${dst.host}/${dstRef}`]);
      peak = Math.max(peak, r.rssMiB);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return { seconds: (performance.now() - started) / 1000, rssMiB: peak };
}

function row(name: string, m: Measure): string {
  return `| ${name.padEnd(34)} | ${m.seconds.toFixed(2).padStart(7)} | ${m.uploadedMiB.toFixed(1).padStart(8)} | ${String(m.requests).padStart(8)} | ${String(m.blobGets).padStart(6)} | ${m.rssMiB.toFixed(0).padStart(7)} |`;
}

async function main(): Promise<void> {
  const started = Date.now();
  const regs: TestRegistry[] = [];
  const start = async () => { const r = await startRegistry({ accessLog: true }); regs.push(r); return r; };
  try {
    const src = await start();
    process.stderr.write(`bench: pushing ${IMAGES} images with signatures…\n`);
    const content = await buildContent(src, 'bench/app', IMAGES);
    const srcRefs = content.refs;
    process.stderr.write(`bench: ${content.manifests} manifests, ${content.blobs} unique blobs, ${(content.bytes / MiB).toFixed(0)} MiB\n`);
    const dstA = await start(); const dstA1 = await start(); const dstA4 = await start();
    const results: [string, Measure][] = [];
    const run = async (name: string, registries: TestRegistry[], work: () => Promise<{ seconds: number; rssMiB: number }>, sizes = content.blobSizes) => {
      process.stderr.write(`bench: ${name}\n`);
      const m = await meter(registries, sizes, work);
      results.push([name, m]);
      return m;
    };
    const a = await run('(a) cross-registry cold: ours', [src, dstA], () => ours(src, 'bench/app', dstA, 'prod/app'));
    const a1 = await run('(a) cross-registry cold: skopeo ×1', [src, dstA1], () => skopeo(src, dstA1, 'prod/app', srcRefs, 1));
    const a4 = await run('(a) cross-registry cold: skopeo ×4', [src, dstA4], () => skopeo(src, dstA4, 'prod/app', srcRefs, 4));
    const b = await run('(b) same-registry cold: ours', [src], () => ours(src, 'bench/app', src, 'prod/ours'));
    const b1 = await run('(b) same-registry cold: skopeo ×1', [src], () => skopeo(src, src, 'prod/skopeo1', srcRefs, 1));
    const b4 = await run('(b) same-registry cold: skopeo ×4', [src], () => skopeo(src, src, 'prod/skopeo4', srcRefs, 4));
    const c = await run('(c) re-copy (no-op): ours', [src, dstA], () => ours(src, 'bench/app', dstA, 'prod/app'));
    const c1 = await run('(c) re-copy (no-op): skopeo ×1', [src, dstA1], () => skopeo(src, dstA1, 'prod/app', srcRefs, 1));

    // (d) one big blob: peak RSS must stay flat while 1 GiB streams through.
    process.stderr.write(`bench: pushing a ${BIG_MIB} MiB blob…\n`);
    const big = await buildBigBlob(src, 'bench/big', BIG_MIB);
    const dstBig = await start();
    const dstBig1 = await start();
    const d = await run(`(d) ${BIG_MIB} MiB blob: ours`, [src, dstBig], () => ours(src, 'bench/big', dstBig, 'prod/big'), big.blobSizes);
    const d1 = await run(`(d) ${BIG_MIB} MiB blob: skopeo ×1`, [src, dstBig1], () => skopeo(src, dstBig1, 'prod/big', big.refs, 1), big.blobSizes);

    const ratio = (x: Measure, y: Measure) => (x.seconds / y.seconds).toFixed(2);
    const budget = 3 * content.blobs + 2 * content.manifests + content.manifests / 2;
    const lines = [
      `bundle-promoter copy benchmark — ${new Date().toISOString()}, ${IMAGES} images (${content.manifests} manifests incl. signatures, ${content.blobs} unique blobs, ${(content.bytes / MiB).toFixed(0)} MiB), loopback, docker-registry 2.8, skopeo ${await version()}`,
      '',
      '| case | wall s | uploaded MiB | requests | blob GETs | peak RSS MiB |',
      '|---|---:|---:|---:|---:|---:|',
      ...results.map(([n, m]) => row(n, m)),
      '',
      `speed-up, cross-registry: ${ratio(a1, a)}× vs sequential skopeo, ${ratio(a4, a)}× vs 4-parallel skopeo`,
      `speed-up, same registry:  ${ratio(b1, b)}× vs sequential skopeo, ${ratio(b4, b)}× vs 4-parallel skopeo`,
      `requests, cold cross-registry: ${a.requests} (budget ≈ 3/blob + 2/manifest + 1 signature lookup/artifact = ${budget}); skopeo ×1: ${a1.requests}`,
      `re-copy: ${c.requests} requests (${(c.requests / (content.manifests / 2)).toFixed(2)} per artifact), ${c.uploadedMiB.toFixed(1)} MiB uploaded, ${c.blobGets} blob GETs; skopeo ×1 re-copy: ${c1.requests} requests`,
      `big blob: peak RSS ${d.rssMiB.toFixed(0)} MiB for a ${BIG_MIB} MiB blob (skopeo ${d1.rssMiB.toFixed(0)} MiB); ${d.seconds.toFixed(1)} s vs skopeo ${d1.seconds.toFixed(1)} s`,
      `total bench time ${((Date.now() - started) / 1000).toFixed(0)} s`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    await mkdir(join(ROOT, '.bench'), { recursive: true });
    await writeFile(join(ROOT, '.bench', 'results.md'), `${lines.join('\n')}\n`);
  } finally {
    await Promise.all(regs.map((r) => r.stop()));
  }
}

function version(): Promise<string> {
  return new Promise((res) => execFile('skopeo', ['--version'], (_e, out) => res(String(out).trim().split(' ').at(-1) ?? '?')));
}

await main();
