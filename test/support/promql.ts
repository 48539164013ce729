/**
 * What a PromQL expression (an alert's, a dashboard panel's) uses: the
 * shardwrite metric names, the label names it groups or filters by, and the
 * label values it asks for exactly — enough to check them against a
 * process's /metrics (test/observability/metrics-coverage.e2e.test.ts).
 */
export interface PromqlUses {
  readonly metrics: string[];
  readonly labels: string[];
  /** `metric{label="value"}` matchers with a literal value. */
  readonly equalities: { metric: string; label: string; value: string }[];
}

export function promqlUses(expr: string): PromqlUses {
  const metrics = [...new Set([...expr.matchAll(/\bshardwrite_[a-z0-9_]+/g)].map((m) => m[0]))];
  const labels = new Set<string>();
  for (const m of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) for (const l of m[1]!.split(',')) if (l.trim()) labels.add(l.trim());
  for (const m of expr.matchAll(/label_values\(\s*[^,]+,\s*(\w+)\s*\)/g)) labels.add(m[1]!);
  const equalities: PromqlUses['equalities'] = [];
  for (const m of expr.matchAll(/\b(shardwrite_[a-z0-9_]+)\{([^}]*)\}/g)) {
    for (const matcher of m[2]!.matchAll(/(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)) {
      labels.add(matcher[1]!);
      if (matcher[2] === '=' && !matcher[3]!.includes('$')) equalities.push({ metric: m[1]!, label: matcher[1]!, value: matcher[3]! });
    }
  }
  return { metrics, labels: [...labels], equalities };
}
