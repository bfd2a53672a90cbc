/**
 * Copy benchmark: bundle-promoter against the floor, skopeo and imgpkg, in the same run, on the same content.
 *
 * Content (`BENCH_PROFILE`, default `issue10`, see content.ts): a signed bundle of 60 images, each one of 4
 * shared 4 MiB layers + 2 unique 512 KiB layers, every image and the bundle signed (`.sig`): 122 artifacts.
 * Cases: cold copy to a second registry; cold copy to another repository of the same registry (every blob
 * mountable); an immediate re-copy (no-op); one 1 GiB blob (peak RSS).
 * Lanes:
 *   - ours: `bundle-promoter copy --bundle … --to-repo … --cosign-signatures`;
 *   - floor: the least work the same copy can be done with (floor.ts), at the best of BENCH_FLOOR_CONCURRENCY;
 *   - skopeo: `skopeo copy --all --preserve-digests` of every manifest, sequential and 4 in parallel;
 *   - imgpkg: `imgpkg copy --bundle … --to-repo … --cosign-signatures --registry-insecure`, when `imgpkg` is on
 *     PATH or named by `IMGPKG` (skipped otherwise).
 * Every lane runs BENCH_RUNS times (default 2), rounds interleaved so that load drift hits every lane alike;
 * the table shows medians. Requests and uploaded bytes are counted from each registry's own access log, so every
 * tool is measured by the same independent meter; peak RSS and client CPU come from GNU time, registry CPU
 * from /proc. Run: `npm run bench` (env BENCH_PROFILE=issue10|large, BENCH_IMAGES, BENCH_BIG_MIB, BENCH_RUNS,
 * BENCH_FLOOR_CONCURRENCY=4,8,16, BENCH_SKIP_BIG=1).
 */
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { rm, writeFile, mkdir } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { startRegistry, type TestRegistry, type AccessLogEntry } from '../test/support/registry.js';
import { buildBigBlob, buildContent, PROFILES, type Content } from './content.js';
import type { FloorSpec } from './floor.js';
import { registryCpu } from './proc.js';

const BASE_PROFILE = PROFILES[process.env['BENCH_PROFILE'] ?? 'issue10'];
if (BASE_PROFILE === undefined) throw new Error(`BENCH_PROFILE: one of ${Object.keys(PROFILES).join(', ')}`);
const PROFILE = { ...BASE_PROFILE, images: Number(process.env['BENCH_IMAGES'] ?? BASE_PROFILE.images) };
const BIG_MIB = Number(process.env['BENCH_BIG_MIB'] ?? 1024);
const RUNS = Math.max(1, Number(process.env['BENCH_RUNS'] ?? 2));
const FLOOR_CONCURRENCY = (process.env['BENCH_FLOOR_CONCURRENCY'] ?? '4,8,16').split(',').map(Number);
const SKIP_BIG = process.env['BENCH_SKIP_BIG'] === '1';
const ROOT = process.cwd(); // npm run and make run from the package root
const BUILD = join(ROOT, '.bench', 'build');
// The CLI from the bench's own compile of src/ (tsconfig.bench.json): the same snapshot of src/ as the floor
// lane, and untouched by a concurrent `npm run build` rewriting dist/ while the bench runs.
const CLI = process.env['BENCH_CLI'] ?? join(BUILD, 'src', 'cli.js');
const FLOOR = join(BUILD, 'bench', 'floor.js');
const SKOPEO_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb';
const MiB = 1024 * 1024;

type Tool = 'ours' | 'floor' | 'skopeo ×1' | 'skopeo ×4' | 'imgpkg';
interface Timed { seconds: number; rssMiB: number; cpuSeconds: number }
interface Measure extends Timed { requests: number; uploadedMiB: number; blobGets: number; registryCpuSeconds: number; note?: string }
type CaseId = 'cold' | 'same' | 'noop' | 'big';

/** `imgpkg` from IMGPKG or PATH; undefined when there is none (the lane is skipped). */
function findImgpkg(): string | undefined {
  const candidates = process.env['IMGPKG'] ? [process.env['IMGPKG']] : (process.env['PATH'] ?? '').split(delimiter).map((d) => join(d, 'imgpkg'));
  return candidates.find((c) => {
    try { accessSync(c, constants.X_OK); return true; } catch { return false; }
  });
}
const IMGPKG = findImgpkg();

async function timed(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Timed & { stdout: string }> {
  // GNU time reports the child's peak RSS (maxrss, KiB) and CPU seconds; wall time is measured here.
  const started = performance.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '@@rss %M %U %S', command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const t = /@@rss (\d+) ([\d.]+) ([\d.]+)/.exec(stderr);
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolvePromise({ seconds, rssMiB: Number(t?.[1] ?? 0) / 1024, cpuSeconds: Number(t?.[2] ?? 0) + Number(t?.[3] ?? 0), stdout });
    });
  });
}

async function meter(registries: TestRegistry[], sizes: Map<string, number>, work: () => Promise<Timed & { note?: string }>): Promise<Measure> {
  const before = await Promise.all(registries.map((r) => r.requests()));
  const cpuBefore = registries.reduce((n, r) => n + registryCpu(r), 0);
  const t = await work();
  const registryCpuSeconds = registries.reduce((n, r) => n + registryCpu(r), 0) - cpuBefore;
  const after = await Promise.all(registries.map((r) => r.requests()));
  const fresh: AccessLogEntry[] = after.flatMap((entries, i) => entries.slice(before[i]!.length));
  const uploaded = fresh
    .filter((e) => e.method === 'PUT' && e.path.includes('/blobs/uploads/') && e.status === 201)
    .reduce((n, e) => n + (sizes.get(new URLSearchParams(e.query).get('digest') ?? '') ?? 0), 0);
  const blobGets = fresh.filter((e) => e.method === 'GET' && e.path.includes('/blobs/sha256:')).length;
  return { ...t, registryCpuSeconds, requests: fresh.length, uploadedMiB: uploaded / MiB, blobGets };
}

function ours(src: TestRegistry, srcRepo: string, dst: TestRegistry, dstRepo: string): Promise<Timed> {
  const insecure = [...new Set([src.host, dst.host])].flatMap((h) => ['--registry-insecure', h]);
  return timed(process.execPath, [CLI, 'copy', '--bundle', `${src.host}/${srcRepo}:v1`, '--to-repo', `${dst.host}/${dstRepo}`, '--cosign-signatures', '--json', ...insecure]);
}

function imgpkg(src: TestRegistry, srcRepo: string, dst: TestRegistry, dstRepo: string): Promise<Timed> {
  // --registry-insecure: plain HTTP to the loopback registries. No docker config: anonymous, as ours.
  return timed(IMGPKG!, ['copy', '--bundle', `${src.host}/${srcRepo}:v1`, '--to-repo', `${dst.host}/${dstRepo}`, '--cosign-signatures', '--registry-insecure', '--tty=false'],
    { ...process.env, IMGPKG_ANON: 'true' });
}

async function floor(src: TestRegistry, srcRepo: string, dst: TestRegistry, dstRepo: string, content: Content, concurrency: number): Promise<Timed> {
  const spec: FloorSpec = {
    src: src.host, srcRepo, dst: dst.host, dstRepo, concurrency, artifacts: content.artifacts, blobSizes: Object.fromEntries(content.blobSizes),
  };
  const file = join(ROOT, '.bench', `floor-spec-${process.pid}.json`);
  await writeFile(file, JSON.stringify(spec));
  return timed(process.execPath, [FLOOR, file]);
}

async function skopeo(src: TestRegistry, dst: TestRegistry, dstRepo: string, refs: string[], parallel: number): Promise<Timed> {
  await rm(SKOPEO_CACHE, { force: true });
  const started = performance.now();
  let peak = 0;
  let cpu = 0;
  let next = 0;
  const worker = async () => {
    while (next < refs.length) {
      const ref = refs[next++]!;
      const name = ref.slice(ref.indexOf('/') + 1);
      const dstRef = name.includes('@') ? `${dstRepo}:${name.split('@')[1]!.replace(':', '-')}.imgpkg` : `${dstRepo}:${name.split(':').at(-1)!}`;
      const r = await timed('skopeo', ['copy', '--all', '--preserve-digests', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${src.host}/${ref}`, `docker://${dst.host}/${dstRef}`]);
      peak = Math.max(peak, r.rssMiB);
      cpu += r.cpuSeconds;
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return { seconds: (performance.now() - started) / 1000, rssMiB: peak, cpuSeconds: cpu };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Medians of every field over the runs of one lane; `wall` keeps each run's seconds. */
interface Lane { case: CaseId; tool: Tool; label: string; runs: Measure[] }
function summary(lane: Lane): Measure & { walls: number[] } {
  const pick = (f: (m: Measure) => number) => median(lane.runs.map(f));
  return {
    seconds: pick((m) => m.seconds), rssMiB: pick((m) => m.rssMiB), cpuSeconds: pick((m) => m.cpuSeconds), registryCpuSeconds: pick((m) => m.registryCpuSeconds),
    requests: pick((m) => m.requests), uploadedMiB: pick((m) => m.uploadedMiB), blobGets: pick((m) => m.blobGets), walls: lane.runs.map((m) => m.seconds),
    ...(lane.runs[0]?.note !== undefined ? { note: lane.runs[0].note } : {}),
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const regs: TestRegistry[] = [];
  const start = async () => { const r = await startRegistry({ accessLog: true }); regs.push(r); return r; };
  const stop = async (r: TestRegistry) => { regs.splice(regs.indexOf(r), 1); await r.stop(); };
  const lanes: Lane[] = [];
  const laneFor = (c: CaseId, tool: Tool, label: string): Lane => {
    let lane = lanes.find((l) => l.case === c && l.tool === tool);
    if (!lane) { lane = { case: c, tool, label, runs: [] }; lanes.push(lane); }
    return lane;
  };
  const record = async (c: CaseId, tool: Tool, label: string, registries: TestRegistry[], sizes: Map<string, number>, work: () => Promise<Timed & { note?: string }>) => {
    process.stderr.write(`bench: ${label} [${tool}]… `);
    const m = await meter(registries, sizes, work);
    process.stderr.write(`${m.seconds.toFixed(2)} s, ${m.requests} requests, ${m.rssMiB.toFixed(0)} MiB\n`);
    laneFor(c, tool, label).runs.push(m);
    return m;
  };
  const tools: Tool[] = ['ours', 'floor', 'skopeo ×1', 'skopeo ×4', ...(IMGPKG ? ['imgpkg' as const] : [])];
  if (!IMGPKG) process.stderr.write('bench: imgpkg not on PATH and IMGPKG unset: imgpkg lanes skipped\n');

  try {
    await mkdir(join(ROOT, '.bench'), { recursive: true });
    const src = await start();
    process.stderr.write(`bench: pushing ${PROFILE.images} images with signatures (profile ${PROFILE.name})…\n`);
    const content = await buildContent(src, 'bench/app', PROFILE);
    const sizes = content.blobSizes;
    process.stderr.write(`bench: ${content.manifests} manifests, ${content.blobs} unique blobs, ${(content.bytes / MiB).toFixed(0)} MiB\n`);

    // The floor's concurrency: the best of the candidates on the cold case (one run each), then measured like every lane.
    let best = { concurrency: FLOOR_CONCURRENCY[0]!, seconds: Number.POSITIVE_INFINITY };
    const sweep: string[] = [];
    for (const c of FLOOR_CONCURRENCY) {
      const dst = await start();
      const m = await meter([src, dst], sizes, () => floor(src, 'bench/app', dst, 'prod/app', content, c));
      sweep.push(`${c}: ${m.seconds.toFixed(2)} s`);
      process.stderr.write(`bench: floor sweep, concurrency ${c}: ${m.seconds.toFixed(2)} s, ${m.requests} requests\n`);
      if (m.seconds < best.seconds) best = { concurrency: c, seconds: m.seconds };
      await stop(dst);
    }
    const floorC = best.concurrency;

    // (a) cold cross-registry, then (c) the no-op re-copy into the same target; a fresh target per run.
    const lastTarget = new Map<Tool, TestRegistry>();
    for (let run = 0; run < RUNS; run++) {
      for (const tool of tools) {
        const dst = await start();
        const work = {
          'ours': () => ours(src, 'bench/app', dst, 'prod/app'),
          'floor': () => floor(src, 'bench/app', dst, 'prod/app', content, floorC),
          'skopeo ×1': () => skopeo(src, dst, 'prod/app', content.refs, 1),
          'skopeo ×4': () => skopeo(src, dst, 'prod/app', content.refs, 4),
          'imgpkg': () => imgpkg(src, 'bench/app', dst, 'prod/app'),
        }[tool];
        await record('cold', tool, '(a) cross-registry cold', [src, dst], sizes, work);
        const previous = lastTarget.get(tool);
        if (previous) await stop(previous);
        lastTarget.set(tool, dst);
      }
    }
    for (let run = 0; run < RUNS; run++) {
      for (const tool of tools.filter((t) => t !== 'floor' && t !== 'skopeo ×4')) {
        const dst = lastTarget.get(tool)!;
        const work = {
          'ours': () => ours(src, 'bench/app', dst, 'prod/app'),
          'skopeo ×1': () => skopeo(src, dst, 'prod/app', content.refs, 1),
          'imgpkg': () => imgpkg(src, 'bench/app', dst, 'prod/app'),
        }[tool as 'ours' | 'skopeo ×1' | 'imgpkg'];
        await record('noop', tool, '(c) re-copy (no-op)', [src, dst], sizes, work);
      }
    }
    for (const dst of lastTarget.values()) await stop(dst);

    // (b) same registry, another repository: every blob mountable. A fresh repository per run.
    for (let run = 0; run < RUNS; run++) {
      for (const tool of tools.filter((t) => t !== 'skopeo ×1')) {
        const repo = `prod/${tool.replace(/[^a-z0-9]/g, '')}-${run}`;
        const work = {
          'ours': () => ours(src, 'bench/app', src, repo),
          'floor': () => floor(src, 'bench/app', src, repo, content, floorC),
          'skopeo ×4': () => skopeo(src, src, repo, content.refs, 4),
          'imgpkg': () => imgpkg(src, 'bench/app', src, repo),
        }[tool as 'ours' | 'floor' | 'skopeo ×4' | 'imgpkg'];
        await record('same', tool, '(b) same-registry cold', [src], sizes, work);
      }
    }

    // (d) one big blob: peak RSS must stay flat while 1 GiB streams through. A fresh target per run, stopped after.
    let big: Content | undefined;
    if (!SKIP_BIG) {
      process.stderr.write(`bench: pushing a ${BIG_MIB} MiB blob…\n`);
      big = await buildBigBlob(src, 'bench/big', BIG_MIB);
      for (let run = 0; run < RUNS; run++) {
        for (const tool of tools.filter((t) => t !== 'skopeo ×4')) {
          const dst = await start();
          const bigContent = big;
          const work = {
            'ours': () => ours(src, 'bench/big', dst, 'prod/big'),
            'floor': () => floor(src, 'bench/big', dst, 'prod/big', bigContent, floorC),
            'skopeo ×1': () => skopeo(src, dst, 'prod/big', bigContent.refs, 1),
            'imgpkg': () => imgpkg(src, 'bench/big', dst, 'prod/big'),
          }[tool as 'ours' | 'floor' | 'skopeo ×1' | 'imgpkg'];
          await record('big', tool, `(d) one ${BIG_MIB} MiB blob`, [src, dst], big.blobSizes, work);
          await stop(dst);
        }
      }
    }

    const text = report(content, lanes, floorC, sweep, big, started);
    process.stdout.write(`${text}\n`);
    await writeFile(join(ROOT, '.bench', 'results.md'), `${text}\n`);
  } finally {
    await Promise.all(regs.map((r) => r.stop()));
    await rm(join(ROOT, '.bench', `floor-spec-${process.pid}.json`), { force: true });
  }
}

function report(content: Content, lanes: Lane[], floorC: number, sweep: string[], big: Content | undefined, started: number): string {
  const get = (c: CaseId, t: Tool) => {
    const lane = lanes.find((l) => l.case === c && l.tool === t);
    return lane ? summary(lane) : undefined;
  };
  const fastestSkopeo = (c: CaseId) => [get(c, 'skopeo ×1'), get(c, 'skopeo ×4')].filter((m) => m !== undefined).sort((a, b) => a.seconds - b.seconds)[0];
  const ratio = (x: number | undefined, y: number | undefined) => (x === undefined || y === undefined || y === 0 ? '—' : `${(x / y).toFixed(2)}×`);
  const artifacts = content.manifests;

  const rows = lanes.map((lane) => {
    const m = summary(lane);
    const isOurs = lane.tool === 'ours';
    const cell = (peer: (Measure & { walls: number[] }) | undefined) => (isOurs ? ratio(m.seconds, peer?.seconds) : '');
    return `| ${lane.label} | ${lane.tool}${lane.tool === 'floor' ? ` (c=${floorC})` : ''} | ${m.seconds.toFixed(2)} | ${m.walls.map((w) => w.toFixed(2)).join(' / ')} | ${m.requests.toFixed(0)} | ${m.uploadedMiB.toFixed(1)} | ${m.blobGets.toFixed(0)} | ${m.rssMiB.toFixed(0)} | ${m.cpuSeconds.toFixed(2)} | ${m.registryCpuSeconds.toFixed(2)} | ${cell(get(lane.case, 'floor'))} | ${cell(fastestSkopeo(lane.case))} | ${cell(get(lane.case, 'imgpkg'))} |`;
  });

  type Target = [string, number | undefined, number, string];
  const oursOf = (c: CaseId) => get(c, 'ours');
  const div = (x: number | undefined, y: number | undefined) => (x === undefined || y === undefined || y === 0 ? undefined : x / y);
  const targets: Target[] = [
    ['cold cross-registry wall ≤ 0.5× imgpkg', div(oursOf('cold')?.seconds, get('cold', 'imgpkg')?.seconds), 0.5, '×'],
    ['cold cross-registry wall ≤ 1.3× floor', div(oursOf('cold')?.seconds, get('cold', 'floor')?.seconds), 1.3, '×'],
    ['same-registry wall ≤ 1.2× floor', div(oursOf('same')?.seconds, get('same', 'floor')?.seconds), 1.2, '×'],
    [`${BIG_MIB} MiB blob wall ≤ 1.0× skopeo`, div(oursOf('big')?.seconds, get('big', 'skopeo ×1')?.seconds), 1.0, '×'],
    [`${BIG_MIB} MiB blob peak RSS < 200 MiB`, oursOf('big')?.rssMiB, 200, ' MiB'],
    ['cold requests ≤ 0.55× imgpkg', div(oursOf('cold')?.requests, get('cold', 'imgpkg')?.requests), 0.55, '×'],
    ['cold requests ≤ 1.05× floor', div(oursOf('cold')?.requests, get('cold', 'floor')?.requests), 1.05, '×'],
    ['no-op ≤ 2 requests per artifact', div(oursOf('noop')?.requests, artifacts), 2, '/artifact'],
  ];
  const targetRows = targets.map(([name, value, limit, unit]) => {
    const strict = name.includes('<');
    const met = value === undefined ? 'not measured' : (strict ? value < limit : value <= limit) ? '**met**' : '**not met**';
    return `| ${name} | ${value === undefined ? '—' : `${value.toFixed(2)}${unit}`} | ${met} |`;
  });

  return [
    `bundle-promoter copy benchmark — ${new Date().toISOString()}, profile ${PROFILE.name}: ${PROFILE.images} images × (${PROFILE.bases} shared ${(PROFILE.baseBytes / MiB).toFixed(1)} MiB + ${PROFILE.unique} unique ${(PROFILE.uniqueBytes / 1024).toFixed(0)} KiB layers), signed: ${content.manifests} artifacts, ${content.blobs} unique blobs, ${(content.bytes / MiB).toFixed(0)} MiB${big ? `; big blob ${BIG_MIB} MiB` : ''}`,
    `loopback, docker-registry 2.8, skopeo ${version('skopeo')}, imgpkg ${IMGPKG ? version(IMGPKG) : 'skipped (not on PATH, IMGPKG unset)'}, Node ${process.versions.node}, ${RUNS} runs per lane (median; every run's wall listed); floor concurrency ${floorC} (sweep ${sweep.join(', ')})`,
    '',
    '| case | lane | wall s | runs s | requests | uploaded MiB | blob GETs | peak RSS MiB | client CPU s | registry CPU s | ours/floor | ours/skopeo | ours/imgpkg |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    'ours/skopeo divides by the faster skopeo lane of the case. Targets (issue #10):',
    '',
    '| target | ours | |',
    '|---|---:|---|',
    ...targetRows,
    '',
    `total bench time ${((Date.now() - started) / 1000).toFixed(0)} s`,
  ].join('\n');
}

const versions = new Map<string, string>();
function version(command: string): string {
  return versions.get(command) ?? '?';
}
async function loadVersions(): Promise<void> {
  const ask = (command: string, args: string[]) => new Promise<void>((res) => execFile(command, args, (_e, out) => {
    const v = /(\d+\.\d+\.\d+)/.exec(String(out))?.[1];
    if (v) versions.set(command, v);
    res();
  }));
  await ask('skopeo', ['--version']);
  if (IMGPKG) await ask(IMGPKG, ['version']);
}

await loadVersions();
await main();
