/** The parts of `GET /status` (bundle-promoter run) the demo reads. */
export interface StatusView {
  readonly promotions: readonly PromotionView[];
  readonly problems: readonly { readonly file: string; readonly errors: readonly string[] }[];
}

export interface PromotionView {
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  readonly source: string;
  readonly target: string;
  readonly status: {
    readonly phase?: string;
    readonly conditions?: readonly { readonly type: string; readonly status: string; readonly reason: string; readonly message: string }[];
    readonly promotedDigest?: string;
    readonly promotedTags?: readonly string[];
    readonly lastHandledRequestedAt?: string;
  };
}

/** Reads `/status` and `/metrics` of a running `bundle-promoter run`. */
export class StatusClient {
  readonly #url: string;

  constructor(url: string) {
    this.#url = url;
  }

  async status(signal: AbortSignal): Promise<StatusView> {
    const res = await fetch(`${this.#url}/status`, { signal });
    if (!res.ok) throw new Error(`GET /status answered ${res.status}`);
    return (await res.json()) as StatusView;
  }

  async promotion(name: string, signal: AbortSignal): Promise<PromotionView | undefined> {
    return (await this.status(signal)).promotions.find((p) => p.name === name);
  }

  async metrics(signal: AbortSignal): Promise<string> {
    const res = await fetch(`${this.#url}/metrics`, { signal });
    if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
    return res.text();
  }
}

/** The `Ready` condition of a promotion, if it has one. */
export function readyOf(p: PromotionView | undefined): { status: string; reason: string; message: string } | undefined {
  return p?.status.conditions?.find((c) => c.type === 'Ready');
}

/** One line for "last seen": phase and the Ready condition. */
export function describePromotion(p: PromotionView | undefined): string {
  if (p === undefined) return 'not in /status';
  const ready = readyOf(p);
  return `phase ${p.status.phase ?? '(none)'}${ready ? `, Ready ${ready.status} ${ready.reason}: ${ready.message}` : ''}`;
}

/** A fixed-width table: name, phase, ready, digest. */
export function statusTable(promotions: readonly PromotionView[]): string {
  const rows = [['NAME', 'PHASE', 'READY', 'DIGEST'], ...promotions.map((p) => [
    p.name, p.status.phase ?? '', readyOf(p)?.status ?? '', p.status.promotedDigest ?? '',
  ])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** The metric families the demo shows: their non-zero samples (no HELP/TYPE lines, no histograms). */
const SHOWN = [
  'bundle_promoter_promotions_total',
  'bundle_promoter_promotion_ready',
  'bundle_promoter_verifications_total',
  'bundle_promoter_manifests_total',
  'bundle_promoter_blobs_total',
];

export function metricsExcerpt(text: string): string[] {
  return text.split('\n').filter((line) => SHOWN.some((name) => line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && Number(line.split(' ').at(-1)) !== 0);
}
