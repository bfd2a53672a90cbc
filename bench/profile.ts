/**
 * Where the time of a cold cross-registry copy goes (issue #10, docs/performance.md). Same content as
 * `npm run bench` (BENCH_PROFILE, BENCH_IMAGES). Three views of the same copy, each into a fresh target:
 *
 *  1. the built CLI under `node --cpu-prof`: self time of the main thread bucketed into client CPU kinds
 *     (hashing, gzip, JSON, HTTP, streams, module loading, GC) and idle (waiting on sockets);
 *  2. `PromotionEngine.promote` in this process with `onProgress` timestamps and a `RegistryObserver`:
 *     per phase, its wall time, requests, request-seconds in flight, the time with no request in flight,
 *     and the event loop's utilisation (busy share of the main thread);
 *  3. registry CPU seconds during each, from /proc.
 *
 * Run after `npm run bench`'s build: `node .bench/build/bench/profile.js` (writes .bench/profile/);
 * BENCH_PROFILE_BIG_MIB=1024 also profiles the CLI copying one blob of that size.
 */
import { spawn } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import { silentLogger } from '../src/log.js';
import { RegistryClient, parseReference, parseRepository, type RequestFinishedEvent } from '../src/oci/index.js';
import { PromotionEngine, type Phase } from '../src/promote/index.js';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';
import { buildBigBlob, buildContent, PROFILES } from './content.js';
import { registryCpu } from './proc.js';

const BASE = PROFILES[process.env['BENCH_PROFILE'] ?? 'issue10']!;
const PROFILE = { ...BASE, images: Number(process.env['BENCH_IMAGES'] ?? BASE.images) };
const ROOT = process.cwd();
const OUT = join(ROOT, '.bench', 'profile');
const CLI = process.env['BENCH_CLI'] ?? join(ROOT, '.bench', 'build', 'src', 'cli.js');

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

/** The bucket a frame's self time goes to: what kind of client work it is. */
function bucket(frame: ProfileNode['callFrame']): string {
  const { functionName: fn, url } = frame;
  if (fn === '(idle)') return 'idle (waiting on I/O)';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'V8/native (program)';
  if (url.includes('internal/crypto') || /createHash|digestOf|DigestVerifier/.test(fn)) return 'hashing (sha256)';
  if (url.includes('zlib') || url.includes('/tar') || url.includes('tar-stream') || url.includes('/bundle/')) return 'gzip/tar (bundle layer)';
  if (url.includes('/yaml/')) return 'YAML';
  if (fn === 'parse' || fn === 'stringify' || url.includes('wire-format') || url.includes('manifest.js')) return 'JSON / manifest parsing';
  if (url.includes('undici') || url.startsWith('wasm') || fn.startsWith('wasm')) return 'HTTP client (undici, llhttp)';
  if (url.includes('internal/streams') || url.includes('node:stream') || url.includes('internal/net') || url.includes('node:net') || url.includes('stream_base') || fn === 'writev' || fn === 'writeBuffer' || fn === 'readableAddChunk') return 'streams / sockets';
  if (url.includes('internal/modules') || url.includes('internal/bootstrap') || fn === 'compileFunction' || fn === 'compileSourceTextModule' || url === '' && /compile|link|instantiate/i.test(fn)) return 'startup (module load, compile)';
  if (url.includes('pino') || url.includes('/log.js')) return 'logging';
  if (url.includes('/src/') || url.includes('/dist/')) return 'bundle-promoter code';
  if (url.includes('node_modules')) return 'other dependencies';
  return 'other node internals';
}

function analyse(profile: CpuProfile): { totalMs: number; buckets: [string, number][]; top: [string, number][] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const buckets = new Map<string, number>();
  const top = new Map<string, number>();
  for (const [id, ms] of self) {
    const frame = byId.get(id)!.callFrame;
    buckets.set(bucket(frame), (buckets.get(bucket(frame)) ?? 0) + ms);
    const name = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(node_modules|src|internal)\//, '$1/')}:${frame.lineNumber + 1}`;
    top.set(name, (top.get(name) ?? 0) + ms);
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { totalMs: (profile.endTime - profile.startTime) / 1000, buckets: sorted(buckets), top: sorted(top).slice(0, 25) };
}

function run(command: string, args: string[]): Promise<{ seconds: number; stdout: string }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('close', (code) => (code === 0 ? resolve({ seconds: (performance.now() - started) / 1000, stdout }) : reject(new Error(`${command} exited ${code}: ${stderr.slice(-2000)}`))));
  });
}

/** Union length of [start, end) intervals clipped to [from, to). */
function covered(intervals: [number, number][], from: number, to: number): number {
  const clipped = intervals.map(([a, b]) => [Math.max(a, from), Math.min(b, to)] as [number, number]).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let end = from;
  for (const [a, b] of clipped) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

async function inProcess(src: TestRegistry, dst: TestRegistry): Promise<string[]> {
  const requests: (RequestFinishedEvent & { start: number; end: number })[] = [];
  const registry = new RegistryClient({
    insecure: [src.host, dst.host],
    observer: {
      requestFinished: (e) => { const end = performance.now(); requests.push({ ...e, start: end - e.durationMs, end }); },
      retried: () => {},
    },
  });
  const marks: { phase: Phase | 'start'; at: number; elu: EventLoopUtilization }[] = [];
  const mark = (phase: Phase | 'start') => { if (marks.at(-1)?.phase !== phase) marks.push({ phase, at: performance.now(), elu: performance.eventLoopUtilization() }); };
  const engine = new PromotionEngine({ registry, log: silentLogger() });
  // TCP connections undici opened: with keep-alive, about `connections` per registry and direction would do.
  let connects = 0;
  subscribe('undici:client:connected', () => { connects++; });
  const cpuBefore = registryCpu(src) + registryCpu(dst);
  const procBefore = process.cpuUsage();
  mark('start');
  await engine.promote(
    { source: parseReference(`${src.host}/bench/app:v1`), target: parseRepository(`${dst.host}/prod/app`), attached: { signatures: true, attestations: false, sboms: false, referrers: false } },
    { onProgress: (p) => mark(p.phase) },
  );
  mark('done');
  const proc = process.cpuUsage(procBefore);
  const registryCpuS = registryCpu(src) + registryCpu(dst) - cpuBefore;
  await registry.close();

  const t0 = marks[0]!.at;
  const total = marks.at(-1)!.at - t0;
  const spans = requests.map((r) => [r.start, r.end] as [number, number]);
  const lines = [
    `in-process promote: ${(total / 1000).toFixed(2)} s wall, ${requests.length} requests, client CPU ${((proc.user + proc.system) / 1e6).toFixed(2)} s (user+sys, all threads), registry CPU ${registryCpuS.toFixed(2)} s, ${connects} TCP connections opened`,
    '',
    '| phase | starts at s | wall s | share | requests | request-s in flight | mean in flight | no request in flight s | event loop busy |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (let i = 1; i < marks.length; i++) {
    const from = marks[i - 1]!;
    const to = marks[i]!;
    const inPhase = requests.filter((r) => r.end > from.at && r.end <= to.at);
    const inFlight = requests.reduce((n, r) => n + Math.max(0, Math.min(r.end, to.at) - Math.max(r.start, from.at)), 0);
    const wall = to.at - from.at;
    const idle = wall - covered(spans, from.at, to.at);
    const elu = performance.eventLoopUtilization(to.elu, from.elu);
    const name = from.phase === 'start' ? 'startup' : from.phase;
    lines.push(`| ${name} | ${((from.at - t0) / 1000).toFixed(2)} | ${(wall / 1000).toFixed(2)} | ${((100 * wall) / total).toFixed(0)}% | ${inPhase.length} | ${(inFlight / 1000).toFixed(2)} | ${(inFlight / Math.max(wall, 1)).toFixed(1)} | ${(idle / 1000).toFixed(2)} | ${(elu.utilization * 100).toFixed(0)}% |`);
  }
  const firstBlobWrite = requests.filter((r) => r.kind === 'PUT upload').map((r) => r.start).sort((a, b) => a - b)[0];
  lines.push('', `first blob upload starts at ${(((firstBlobWrite ?? t0) - t0) / 1000).toFixed(2)} s`);
  const kinds = new Map<string, { n: number; ms: number }>();
  for (const r of requests) { const k = kinds.get(r.kind) ?? { n: 0, ms: 0 }; k.n++; k.ms += r.durationMs; kinds.set(r.kind, k); }
  lines.push('', '| request kind | count | mean ms to headers |', '|---|---:|---:|',
    ...[...kinds].sort((a, b) => b[1].n - a[1].n).map(([k, v]) => `| ${k} | ${v.n} | ${(v.ms / v.n).toFixed(1)} |`));
  return lines;
}

async function main(): Promise<void> {
  const regs: TestRegistry[] = [];
  const start = async () => { const r = await startRegistry({ accessLog: true }); regs.push(r); return r; };
  try {
    await rm(OUT, { recursive: true, force: true });
    await mkdir(OUT, { recursive: true });
    const src = await start();
    process.stderr.write(`profile: pushing ${PROFILE.images} images (profile ${PROFILE.name})…\n`);
    const content = await buildContent(src, 'bench/app', PROFILE);
    const out: string[] = [`profile ${PROFILE.name}: ${content.manifests} artifacts, ${content.blobs} blobs, ${(content.bytes / 1024 / 1024).toFixed(0)} MiB — ${new Date().toISOString()}`, ''];

    // 1. the CLI under --cpu-prof (1 ms sampling), cold into a fresh registry.
    const dst1 = await start();
    const cpuBefore = registryCpu(src) + registryCpu(dst1);
    const cli = await run(process.execPath, ['--cpu-prof', '--cpu-prof-dir', OUT, '--cpu-prof-interval', '1000', CLI, 'copy', '--bundle', `${src.host}/bench/app:v1`, '--to-repo', `${dst1.host}/prod/app`,
      '--cosign-signatures', '--json', '--registry-insecure', src.host, '--registry-insecure', dst1.host]);
    const registryCpuS = registryCpu(src) + registryCpu(dst1) - cpuBefore;
    const json = JSON.parse(cli.stdout) as { durationSeconds: number; requests: { requests: number; byKind: Record<string, number> } };
    const file = (await readdir(OUT)).find((f) => f.endsWith('.cpuprofile'))!;
    const profile = analyse(JSON.parse(await readFile(join(OUT, file), 'utf8')) as CpuProfile);
    const sampled = profile.buckets.reduce((n, [, ms]) => n + ms, 0);
    out.push(`CLI cold copy: ${cli.seconds.toFixed(2)} s process wall, ${json.durationSeconds.toFixed(2)} s inside promote (the rest is start-up), ${json.requests.requests} requests, registry CPU ${registryCpuS.toFixed(2)} s; profile ${join('.bench/profile', file)}`,
      '', '| main thread self time | ms | share |', '|---|---:|---:|',
      ...profile.buckets.map(([b, ms]) => `| ${b} | ${ms.toFixed(0)} | ${((100 * ms) / sampled).toFixed(1)}% |`),
      '', '| top self-time functions | ms |', '|---|---:|', ...profile.top.map(([f, ms]) => `| \`${f}\` | ${ms.toFixed(0)} |`), '',
      `requests by kind (CLI): ${Object.entries(json.requests.byKind).map(([k, n]) => `${k} ${n}`).join(', ')}`, '');

    // 1b. optional: the CLI under --cpu-prof copying one big blob (BENCH_PROFILE_BIG_MIB).
    const bigMib = Number(process.env['BENCH_PROFILE_BIG_MIB'] ?? 0);
    if (bigMib > 0) {
      process.stderr.write(`profile: pushing a ${bigMib} MiB blob…\n`);
      await buildBigBlob(src, 'bench/big', bigMib);
      const bigDir = join(OUT, 'big');
      const dstBig = await start();
      const big = await run(process.execPath, ['--cpu-prof', '--cpu-prof-dir', bigDir, '--cpu-prof-interval', '1000', CLI, 'copy', '--bundle', `${src.host}/bench/big:v1`, '--to-repo', `${dstBig.host}/prod/big`,
        '--cosign-signatures', '--json', '--registry-insecure', src.host, '--registry-insecure', dstBig.host]);
      const bigFile = (await readdir(bigDir)).find((f) => f.endsWith('.cpuprofile'))!;
      const bp = analyse(JSON.parse(await readFile(join(bigDir, bigFile), 'utf8')) as CpuProfile);
      const bs = bp.buckets.reduce((n, [, ms]) => n + ms, 0);
      out.push(`CLI ${bigMib} MiB blob: ${big.seconds.toFixed(2)} s process wall; profile ${join('.bench/profile/big', bigFile)}`, '',
        '| main thread self time | ms | share |', '|---|---:|---:|', ...bp.buckets.map(([b, ms]) => `| ${b} | ${ms.toFixed(0)} | ${((100 * ms) / bs).toFixed(1)}% |`),
        '', '| top self-time functions | ms |', '|---|---:|', ...bp.top.slice(0, 15).map(([f, ms]) => `| \`${f}\` | ${ms.toFixed(0)} |`), '');
      await dstBig.stop();
      regs.splice(regs.indexOf(dstBig), 1);
    }

    // 2. in process, with phases and request timing.
    const dst2 = await start();
    out.push(...await inProcess(src, dst2));
    const text = out.join('\n');
    process.stdout.write(`${text}\n`);
    await writeFile(join(OUT, 'summary.md'), `${text}\n`);
  } finally {
    await Promise.all(regs.map((r) => r.stop()));
  }
}

await main();
