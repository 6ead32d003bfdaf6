// The chart: one uPlot per measurement, stacked and cursor-synced (their scales differ too much
// for one axis), each the bucket average with its min-max band. Dragging across any of them asks
// for that range; the caller re-queries at the finer bucket the server then picks.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Series, SeriesStats } from "./api";
import { formatNumber, formatStamp } from "./time";

export const FIELDS = [
  { key: "speed", label: "Speed", unit: "km/h", color: "#2563eb" },
  { key: "soc", label: "State of charge", unit: "%", color: "#16a34a" },
  { key: "elevation", label: "Elevation", unit: "m", color: "#9333ea" },
  { key: "odometer", label: "Odometer", unit: "km", color: "#ea580c" },
] as const;
type FieldKey = (typeof FIELDS)[number]["key"];

const HEIGHT = 130;

export class Charts {
  private plots: uPlot[] = [];
  private readonly resize = new ResizeObserver(() => this.fit());

  constructor(
    private readonly root: HTMLElement,
    private readonly onZoom: (fromMs: number, toMs: number) => void,
  ) {
    this.resize.observe(root);
  }

  /** Buckets the chart has room for: about one per pixel. */
  maxPoints(): number {
    return Math.max(100, Math.min(2000, this.plotWidth()));
  }

  message(text: string): void {
    this.destroy();
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = text;
    this.root.replaceChildren(p);
  }

  render(series: Series, zone: string): number {
    this.destroy();
    const buckets = series.buckets;
    const half = series.bucket_seconds / 2;
    // x at the bucket's middle, so a bucket's band sits over the time it covers.
    const xs = buckets.map((b) => Date.parse(b.start) / 1000 + half);
    const lo = Date.parse(series.initial_timestamp) / 1000;
    const hi = Date.parse(series.final_timestamp) / 1000;
    const width = this.plotWidth();
    const frag = document.createDocumentFragment();
    let points = 0;
    for (const f of FIELDS) {
      const stats = buckets.map((b) => (b as Record<FieldKey, SeriesStats | null | undefined>)[f.key] ?? null);
      const min = stats.map((s) => s?.min ?? null);
      const max = stats.map((s) => s?.max ?? null);
      const avg = stats.map((s) => s?.avg ?? null);
      points += avg.filter((v) => v !== null).length;
      const box = document.createElement("figure");
      box.className = "plot";
      box.dataset["field"] = f.key;
      box.setAttribute("aria-label", `${f.label} (${f.unit}) over time`);
      frag.append(box);
      const fmt = (_u: uPlot, v: number | null) => (v == null ? "–" : `${formatNumber(v)} ${f.unit}`);
      const opts: uPlot.Options = {
        width,
        height: HEIGHT,
        title: `${f.label} (${f.unit})`,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), zone),
        cursor: {
          sync: { key: "vehicle-data" },
          drag: { x: true, y: false, setScale: false },
        },
        scales: { x: { time: true, range: (_u, dmin, dmax) => [Math.min(lo, dmin), Math.max(hi, dmax)] } },
        axes: [{}, { size: 60, values: (_u, vals) => vals.map((v) => formatNumber(v)) }],
        series: [
          { value: (_u, v) => (v == null ? "" : formatStamp(v * 1000, zone)) },
          { label: "min", stroke: f.color + "55", width: 1, value: fmt },
          { label: "max", stroke: f.color + "55", width: 1, value: fmt },
          { label: "avg", stroke: f.color, width: 1.5, value: fmt },
        ],
        bands: [{ series: [2, 1], fill: f.color + "26" }],
        hooks: {
          setSelect: [
            (u) => {
              if (u.select.width < 3) return;
              const a = u.posToVal(u.select.left, "x");
              const b = u.posToVal(u.select.left + u.select.width, "x");
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              this.onZoom(a * 1000, b * 1000);
            },
          ],
        },
      };
      this.plots.push(new uPlot(opts, [xs, min, max, avg], box));
    }
    this.root.replaceChildren(frag);
    return points;
  }

  /** The charts sit in one or two columns (see style.css). */
  private plotWidth(): number {
    const cols = getComputedStyle(this.root).gridTemplateColumns.split(" ").filter(Boolean).length || 1;
    const gap = parseFloat(getComputedStyle(this.root).columnGap) || 0;
    return Math.floor(((this.root.clientWidth || 1000) - gap * (cols - 1)) / cols);
  }

  private fit(): void {
    const width = this.plotWidth();
    for (const p of this.plots) if (width && p.width !== width) p.setSize({ width, height: HEIGHT });
  }

  private destroy(): void {
    for (const p of this.plots) p.destroy();
    this.plots = [];
  }
}
