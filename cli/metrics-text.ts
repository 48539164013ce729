/**
 * The Prometheus text exposition format, read back: what `/metrics` of a
 * router or shard serves, as metric families, their series and labels
 * (for `shardwrite top`, and for the test that checks the dashboard's and
 * alerts' queries against real processes).
 */

/** One series: its labels and value. */
export interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The samples of one name (a histogram's `_bucket`, `_sum` and `_count` are names of their own). */
export interface ExposedMetric {
  /** The family it belongs to (its `# TYPE` name: `x` for `x_bucket`). */
  readonly family: string;
  readonly type: string;
  readonly series: Series[];
  /** Label names seen on its series. */
  readonly labels: Set<string>;
  /** Values seen per label name. */
  readonly values: Map<string, Set<string>>;
  /** Series count (0: declared by `# TYPE`, no series yet). */
  samples: number;
}

export type Exposition = Map<string, ExposedMetric>;

const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses one or more concatenated expositions (a series seen twice is kept twice). */
export function parseExposition(text: string): Exposition {
  const out: Exposition = new Map();
  const entry = (name: string, family: string, type: string): ExposedMetric => {
    let m = out.get(name);
    if (!m) out.set(name, (m = { family, type, series: [], labels: new Set(), values: new Map(), samples: 0 }));
    return m;
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [, , family, type = 'untyped'] = line.split(' ');
      if (!family) continue;
      entry(family, family, type);
      if (type === 'histogram' || type === 'summary') for (const s of HISTOGRAM_SUFFIXES) entry(family + s, family, type);
      continue;
    }
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = brace >= 0 ? line.indexOf(' ', line.lastIndexOf('}')) : line.indexOf(' ');
    const name = line.slice(0, brace >= 0 ? brace : space);
    const labels: Record<string, string> = {};
    if (brace >= 0) for (const m of line.slice(brace, line.lastIndexOf('}') + 1).matchAll(LABEL)) labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    const m = out.get(name) ?? entry(name, name, 'untyped');
    m.series.push({
      labels,
      value: Number(
        line
          .slice(space + 1)
          .trim()
          .split(' ')[0],
      ),
    });
    m.samples++;
    for (const [k, v] of Object.entries(labels)) {
      m.labels.add(k);
      let vs = m.values.get(k);
      if (!vs) m.values.set(k, (vs = new Set()));
      vs.add(v);
    }
  }
  return out;
}
