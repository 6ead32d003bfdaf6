// Instants <-> the wall-clock values of `datetime-local` inputs in a chosen IANA time zone,
// with Intl only (no time zone database in the bundle).

export const browserZone: string = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

export function zones(): string[] {
  const all = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const set = new Set(["UTC", browserZone, ...all]);
  return [...set].sort((a, b) => (a === "UTC" ? -1 : b === "UTC" ? 1 : a.localeCompare(b)));
}

const wallFormats = new Map<string, Intl.DateTimeFormat>();
function wallFormat(zone: string): Intl.DateTimeFormat {
  let f = wallFormats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
    wallFormats.set(zone, f);
  }
  return f;
}

interface Wall { y: number; mo: number; d: number; h: number; mi: number; s: number }

function wall(ms: number, zone: string): Wall {
  const p: Record<string, number> = {};
  for (const { type, value } of wallFormat(zone).formatToParts(ms)) p[type] = Number(value);
  return { y: p["year"] ?? 1970, mo: p["month"] ?? 1, d: p["day"] ?? 1, h: p["hour"] ?? 0, mi: p["minute"] ?? 0, s: p["second"] ?? 0 };
}

function wallUTC(w: Wall): number {
  const t = new Date(0);
  t.setUTCFullYear(w.y, w.mo - 1, w.d);
  t.setUTCHours(w.h, w.mi, w.s, 0);
  return t.getTime();
}

/** The zone's offset from UTC at instant ms, in ms. */
function offset(ms: number, zone: string): number {
  const whole = Math.floor(ms / 1000) * 1000;
  return wallUTC(wall(whole, zone)) - whole;
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** The `datetime-local` value (with seconds) of instant ms in zone. */
export function toInput(ms: number, zone: string): string {
  const w = wall(ms, zone);
  return `${pad(w.y, 4)}-${pad(w.mo)}-${pad(w.d)}T${pad(w.h)}:${pad(w.mi)}:${pad(w.s)}`;
}

/** The instant a `datetime-local` value means in zone, or null when empty or malformed. */
export function fromInput(value: string, zone: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?$/.exec(value);
  if (!m) return null;
  const n = (i: number) => Number(m[i] ?? 0);
  const guess = wallUTC({ y: n(1), mo: n(2), d: n(3), h: n(4), mi: n(5), s: n(6) }) + Number((m[7] ?? "0").padEnd(3, "0"));
  let t = guess - offset(guess, zone);
  const again = offset(t, zone);
  if (guess - again !== t) t = guess - again; // the guess fell on the other side of a DST change
  return t;
}

const stampFormats = new Map<string, Intl.DateTimeFormat>();
/** A record's timestamp for people, in zone, to the millisecond. */
export function formatStamp(iso: string | number, zone: string): string {
  let f = stampFormats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat(undefined, {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "short", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3,
    });
    stampFormats.set(zone, f);
  }
  return f.format(typeof iso === "number" ? iso : Date.parse(iso));
}

const shortFormats = new Map<string, Intl.DateTimeFormat>();
export function formatShort(iso: string | number, zone: string): string {
  let f = shortFormats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat(undefined, {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    });
    shortFormats.set(zone, f);
  }
  return f.format(typeof iso === "number" ? iso : Date.parse(iso));
}

/** A duration for people: "5 s", "15 min", "2 h", "1 d", "7 d", "3 d 4 h". */
export function formatDuration(seconds: number): string {
  const units: [number, string][] = [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]];
  const out: string[] = [];
  let rest = Math.round(seconds);
  for (const [size, name] of units) {
    if (rest >= size && out.length < 2) {
      out.push(`${Math.floor(rest / size)} ${name}`);
      rest %= size;
    }
  }
  return out.length ? out.join(" ") : "0 s";
}

const numbers = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
export const formatNumber = (n: number): string => numbers.format(n);
export const formatCount = (n: number): string => new Intl.NumberFormat().format(n);
