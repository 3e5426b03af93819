// A small Prometheus text-format registry: counters, gauges and histograms with labels.
// Hot paths only add to numbers in a Map; the text is built when /metrics is scraped.

type Labels = Record<string, string | number>;

interface Metric {
  render(): string;
}

function renderLabels(labels: Labels): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${String(labels[k]).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

// Observations sit on every request's path: the rendered key (sorted, escaped) is built once per label set,
// found again by a plain concatenation. Bounded, as label values come from code, not from clients.
const keys = new Map<string, string>();
const MAX_KEYS = 10_000;

function labelKey(labels: Labels | undefined): string {
  if (!labels) return "";
  let raw = "";
  for (const k in labels) raw += `${k}\u0000${labels[k]}\u0001`;
  let key = keys.get(raw);
  if (key === undefined) {
    key = renderLabels(labels);
    if (keys.size < MAX_KEYS) keys.set(raw, key);
  }
  return key;
}

function withLabel(key: string, extra: string): string {
  return key ? `{${key.slice(1, -1)},${extra}}` : `{${extra}}`;
}

export class Registry {
  private readonly metrics: Metric[] = [];

  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }
  gauge(name: string, help: string, collect?: () => number): Gauge {
    return this.add(new Gauge(name, help, collect));
  }
  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }
  render(): string {
    return this.metrics.map((m) => m.render()).join("");
  }
  private add<T extends Metric>(m: T): T {
    this.metrics.push(m);
    return m;
  }
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels?: Labels, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    if (this.values.size === 0) out += `${this.name} 0\n`;
    for (const [k, v] of this.values) out += `${this.name}${k} ${v}\n`;
    return out;
  }
}

export class Gauge implements Metric {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly collect?: () => number,
  ) {}
  set(value: number, labels?: Labels): void {
    this.values.set(labelKey(labels), value);
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n`;
    if (this.collect) return `${out}${this.name} ${this.collect()}\n`;
    if (this.values.size === 0) out += `${this.name} 0\n`;
    for (const [k, v] of this.values) out += `${this.name}${k} ${v}\n`;
    return out;
  }
}

interface Series {
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram implements Metric {
  private readonly series = new Map<string, Series>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {}
  observe(value: number, labels?: Labels): void {
    this.record(this.seriesOf(labelKey(labels)), value);
  }
  /**
   * An observer for one label set, its series looked up once: for a hot path that observes the same few label sets
   * over and over (the view routes, per status). Nothing is rendered for it until it observes.
   */
  bind(labels?: Labels): (value: number) => void {
    const k = labelKey(labels);
    let s: Series | undefined;
    return (value) => {
      s ??= this.seriesOf(k);
      this.record(s, value);
    };
  }
  private seriesOf(k: string): Series {
    let s = this.series.get(k);
    if (!s) {
      s = { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    return s;
  }
  private record(s: Series, value: number): void {
    // Buckets are few and sorted: the first one that fits takes the sample; render() makes them cumulative.
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]!) {
        s.counts[i]!++;
        break;
      }
    }
    s.sum += value;
    s.count++;
  }
  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (const [k, s] of this.series) {
      let acc = 0;
      this.buckets.forEach((b, i) => {
        acc += s.counts[i]!;
        out += `${this.name}_bucket${withLabel(k, `le="${b}"`)} ${acc}\n`;
      });
      out += `${this.name}_bucket${withLabel(k, 'le="+Inf"')} ${s.count}\n`;
      out += `${this.name}_sum${k} ${s.sum}\n${this.name}_count${k} ${s.count}\n`;
    }
    return out;
  }
}
