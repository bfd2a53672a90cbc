/** PromQL found in the alert rules and the Grafana dashboard, and the metric names it reads. */

const KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset',
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile',
  'Inf', 'NaN', 'inf', 'nan', 'atan2',
]);

/** Every `expr` of a rule file (`{ groups: [{ rules: [{ expr }] }] }`). */
export function ruleExpressions(file: { groups: { rules: { expr: string }[] }[] }): string[] {
  return file.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

/** Every panel query and variable query of a Grafana dashboard (rows included). */
export function dashboardQueries(dashboard: unknown): string[] {
  const out: string[] = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    if (typeof o['expr'] === 'string') out.push(o['expr']);
    if (typeof o['definition'] === 'string') out.push(o['definition']);
    for (const [k, v] of Object.entries(o)) if (k !== 'definition') visit(v);
  };
  visit(dashboard);
  return out;
}

/**
 * The metric names that PromQL expressions select, first appearance first. Not a parser: it removes
 * strings, label matchers, ranges and grouping label lists, then keeps identifiers that are neither
 * functions nor keywords. `label_values(metric, label)` (Grafana) counts as `metric`.
 */
export function metricNames(exprs: readonly string[]): string[] {
  const names: string[] = [];
  for (const expr of exprs) {
    const stripped = expr
      .replace(/label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,[^)]*\)/g, ' $1 ')
      .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
      .replace(/\{[^}]*\}/g, ' ')
      .replace(/\[[^\]]*\]/g, ' ')
      .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' $1 ');
    for (const m of stripped.matchAll(/(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(\s*\()?/g)) {
      const name = m[1] as string;
      if (m[2] !== undefined || KEYWORDS.has(name) || /^\d/.test(name)) continue;
      if (!names.includes(name)) names.push(name);
    }
  }
  return names;
}

/** The family a sample name belongs to: histogram and summary suffixes removed. */
export function familyOf(name: string): string {
  return name.replace(/_(bucket|sum|count)$/, '');
}
