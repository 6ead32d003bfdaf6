// The dashboard: vehicle picker, time range and zone, the records table (sort, cursor pages,
// page jump), the chart, uploads and exports; every call goes through the public API.
import "./style.css";
import { api, ApiError, failure, getToken, isAbort, offline, setToken, type ListQuery, type Page, type Vehicle } from "./api";
import { Charts } from "./chart";
import { browserZone, formatCount, formatDuration, formatNumber, formatShort, formatStamp, fromInput, toInput, zones } from "./time";
import { Uploads } from "./upload";

const COLUMNS = [
  { key: "id", label: "Id", num: true },
  { key: "vehicle_id", label: "Vehicle", num: false },
  { key: "timestamp", label: "Time", num: false },
  { key: "speed", label: "Speed (km/h)", num: true },
  { key: "odometer", label: "Odometer (km)", num: true },
  { key: "soc", label: "SoC (%)", num: true },
  { key: "elevation", label: "Elevation (m)", num: true },
  { key: "shift_state", label: "Shift", num: false },
] as const;
type Column = (typeof COLUMNS)[number]["key"];

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  token: $<HTMLInputElement>("token"),
  errors: $<HTMLDivElement>("errors"),
  vehicle: $<HTMLSelectElement>("vehicle"),
  summary: $<HTMLParagraphElement>("vehicle-summary"),
  from: $<HTMLInputElement>("from"),
  to: $<HTMLInputElement>("to"),
  zone: $<HTMLSelectElement>("zone"),
  chartInfo: $<HTMLParagraphElement>("chart-info"),
  chartSection: $<HTMLElement>("chart-section"),
  recordsSection: $<HTMLElement>("records-section"),
  count: $<HTMLParagraphElement>("count"),
  pageSize: $<HTMLSelectElement>("page-size"),
  table: $<HTMLTableElement>("records"),
  prev: $<HTMLButtonElement>("prev"),
  next: $<HTMLButtonElement>("next"),
  pageInfo: $<HTMLSpanElement>("page-info"),
  jump: $<HTMLFormElement>("jump"),
  pageNumber: $<HTMLInputElement>("page-number"),
  drop: $<HTMLDivElement>("drop"),
  fileInput: $<HTMLInputElement>("file-input"),
};

/** What the page shows; mirrored in the address bar so a view can be shared or reloaded. */
const state = {
  vehicle: "",
  from: "", // datetime-local values, read in `zone`
  to: "",
  zone: browserZone,
  ordering: "timestamp",
  pageSize: 25,
  page: 1,
  cursor: null as string | null, // set: this page was reached through a cursor
};
let vehicles: Vehicle[] = [];
let lastPage: Page | null = null;

// --- errors -------------------------------------------------------------------------------

function showError(what: string, err: ApiError): void {
  const box = document.createElement("div");
  box.className = "error";
  const title = document.createElement("strong");
  title.textContent = `${what} failed: ${err.message}`;
  box.append(title);
  for (const line of err.lines) {
    const p = document.createElement("div");
    p.textContent = line;
    box.append(p);
  }
  if (err.status === 401) {
    const p = document.createElement("p");
    p.textContent = getToken()
      ? "The server did not accept the API token in the field above: check it with whoever runs the server."
      : "This server requires an API token for this request: enter it in the API token field above (it is kept in this browser's storage).";
    box.append(p);
    ui.token.setAttribute("aria-invalid", "true");
  }
  const close = document.createElement("button");
  close.type = "button";
  close.className = "close";
  close.textContent = "Dismiss";
  close.addEventListener("click", () => box.remove());
  box.append(close);
  ui.errors.append(box);
  while (ui.errors.children.length > 4) ui.errors.firstElementChild?.remove();
}

function clearErrors(): void {
  ui.errors.replaceChildren();
}

// --- render notifications (the browser test and its timings listen to these) -----------------

declare global {
  interface Window {
    __dashboard?: { renders: { part: string; at: number }[] };
  }
}
window.__dashboard = { renders: [] };
function rendered(part: "table" | "chart"): void {
  const at = performance.now();
  window.__dashboard?.renders.push({ part, at });
  dispatchEvent(new CustomEvent("dashboard:rendered", { detail: { part, at } }));
}

// --- address bar --------------------------------------------------------------------------

function readURL(): void {
  const q = new URLSearchParams(location.search);
  state.vehicle = q.get("vehicle") ?? "";
  state.from = q.get("from") ?? "";
  state.to = q.get("to") ?? "";
  state.zone = q.get("tz") || browserZone;
  state.ordering = q.get("ordering") || "timestamp";
  const size = Number(q.get("page_size"));
  state.pageSize = [10, 25, 50, 100].includes(size) ? size : 25;
}

function writeURL(): void {
  const q = new URLSearchParams();
  if (state.vehicle) q.set("vehicle", state.vehicle);
  if (state.from) q.set("from", state.from);
  if (state.to) q.set("to", state.to);
  if (state.zone !== browserZone) q.set("tz", state.zone);
  if (state.ordering !== "timestamp") q.set("ordering", state.ordering);
  if (state.pageSize !== 25) q.set("page_size", String(state.pageSize));
  const s = q.toString();
  history.replaceState(null, "", s ? `?${s}` : location.pathname);
}

// --- filters -------------------------------------------------------------------------------

/** The list's and export's filter and ordering parameters. */
function filterQuery(): ListQuery {
  const q: ListQuery = { ordering: state.ordering, timezone: state.zone };
  if (state.vehicle) q.vehicle_id = state.vehicle;
  if (state.from) q.initial_timestamp = state.from;
  if (state.to) q.final_timestamp = state.to;
  return q;
}

function vehicleLabel(v: Vehicle): string {
  const span = v.first_timestamp && v.last_timestamp
    ? `, ${formatShort(v.first_timestamp, state.zone)} – ${formatShort(v.last_timestamp, state.zone)}`
    : "";
  return `${v.vehicle_id} (${formatCount(v.count)} records${span})`;
}

function renderVehicles(): void {
  const total = vehicles.reduce((n, v) => n + v.count, 0);
  const all = new Option(`All vehicles (${formatCount(total)} records)`, "");
  const opts = vehicles.map((v) => new Option(vehicleLabel(v), v.vehicle_id));
  if (state.vehicle && !vehicles.some((v) => v.vehicle_id === state.vehicle)) {
    opts.push(new Option(`${state.vehicle} (no records)`, state.vehicle));
  }
  ui.vehicle.replaceChildren(all, ...opts);
  ui.vehicle.value = state.vehicle;
  renderSummary();
}

function renderSummary(): void {
  const v = vehicles.find((x) => x.vehicle_id === state.vehicle);
  if (!state.vehicle) {
    ui.summary.textContent = `${formatCount(vehicles.length)} vehicles`;
  } else if (!v || !v.first_timestamp || !v.last_timestamp) {
    ui.summary.textContent = "No records yet.";
  } else {
    const span = (Date.parse(v.last_timestamp) - Date.parse(v.first_timestamp)) / 1000;
    ui.summary.textContent = `${formatCount(v.count)} records from ${formatStamp(v.first_timestamp, state.zone)} to ${formatStamp(v.last_timestamp, state.zone)} (${formatDuration(span)}).`;
  }
}

async function loadVehicles(): Promise<void> {
  try {
    const { data, error, response } = await api.GET("/api/v1/vehicles/");
    if (!data) throw failure(response, error);
    vehicles = data.results;
    renderVehicles();
  } catch (err) {
    showError("Loading the vehicles", offline(err));
  }
}

function newestRecord(): number | null {
  const pick = state.vehicle ? vehicles.filter((v) => v.vehicle_id === state.vehicle) : vehicles;
  const ts = pick.map((v) => (v.last_timestamp ? Date.parse(v.last_timestamp) : NaN)).filter((t) => !isNaN(t));
  return ts.length ? Math.max(...ts) : null;
}

function quickRange(range: string): void {
  if (range === "all") {
    state.from = state.to = "";
  } else {
    const end = newestRecord() ?? Date.now();
    const days = range === "day" ? 1 : range === "week" ? 7 : 30;
    state.from = toInput(end - days * 86_400_000, state.zone);
    state.to = toInput(Math.ceil((end + 1) / 1000) * 1000, state.zone); // up to and including the newest
  }
  ui.from.value = state.from;
  ui.to.value = state.to;
  refresh();
}

// --- table ---------------------------------------------------------------------------------

function sortKey(): { field: string; desc: boolean } {
  const first = state.ordering.split(",")[0] ?? "timestamp";
  return first.startsWith("-") ? { field: first.slice(1), desc: true } : { field: first, desc: false };
}

function renderHead(): void {
  const { field, desc } = sortKey();
  const row = ui.table.tHead!.rows[0]!;
  row.replaceChildren(
    ...COLUMNS.map((c) => {
      const th = document.createElement("th");
      th.scope = "col";
      if (c.num) th.className = "num";
      const sorted = c.key === field;
      th.setAttribute("aria-sort", sorted ? (desc ? "descending" : "ascending") : "none");
      const b = document.createElement("button");
      b.type = "button";
      b.dataset["sort"] = c.key;
      b.textContent = c.label;
      const arrow = document.createElement("span");
      arrow.className = "arrow";
      arrow.setAttribute("aria-hidden", "true");
      arrow.textContent = sorted ? (desc ? " ▼" : " ▲") : "";
      b.append(arrow);
      b.title = `Sort by ${c.label}${sorted && !desc ? ", descending" : ""}`;
      b.addEventListener("click", () => {
        const now = sortKey();
        state.ordering = now.field === c.key && !now.desc ? `-${c.key}` : c.key;
        renderHead();
        loadTable({ page: 1 }).then(() => (ui.table.querySelector(`button[data-sort="${c.key}"]`) as HTMLElement | null)?.focus());
      });
      th.append(b);
      return th;
    }),
  );
}

function cell(value: string | number | null, num: boolean): HTMLTableCellElement {
  const td = document.createElement("td");
  if (num) td.className = "num";
  if (value === null) {
    const s = document.createElement("span");
    s.className = "null";
    s.textContent = "null";
    td.append(s);
  } else {
    td.textContent = typeof value === "number" ? formatNumber(value) : value;
  }
  return td;
}

function renderRows(page: Page): void {
  const frag = document.createDocumentFragment();
  for (const r of page.results) {
    const tr = document.createElement("tr");
    tr.dataset["id"] = String(r.id);
    const time = cell(formatStamp(r.timestamp, state.zone), false);
    time.title = r.timestamp;
    tr.append(
      cell(r.id, true),
      cell(r.vehicle_id, false),
      time,
      cell(r.speed ?? null, true),
      cell(r.odometer, true),
      cell(r.soc, true),
      cell(r.elevation, true),
      cell(r.shift_state ?? null, false),
    );
    frag.append(tr);
  }
  if (!page.results.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = COLUMNS.length;
    td.className = "empty";
    td.textContent = "No records match.";
    tr.append(td);
    frag.append(tr);
  }
  ui.table.tBodies[0]!.replaceChildren(frag);
  const pages = Math.max(1, Math.ceil(page.count / state.pageSize));
  ui.count.textContent = `${formatCount(page.count)} record${page.count === 1 ? "" : "s"}`;
  ui.pageInfo.textContent = `Page ${formatCount(state.page)} of ${formatCount(pages)}`;
  ui.pageNumber.max = String(pages);
  ui.pageNumber.value = String(state.page);
  ui.prev.disabled = !page.previous_cursor;
  ui.next.disabled = !page.next_cursor;
}

let tableAbort: AbortController | null = null;

/** Loads a page: { page } by number (offset), { cursor, page } by a cursor of the last answer. */
async function loadTable(to: { page: number; cursor?: string }): Promise<void> {
  tableAbort?.abort();
  const abort = (tableAbort = new AbortController());
  ui.recordsSection.setAttribute("aria-busy", "true");
  const query: ListQuery = { ...filterQuery(), page_size: state.pageSize };
  if (to.cursor) query.cursor = to.cursor;
  else if (to.page > 1) query.page = to.page;
  try {
    const { data, error, response } = await api.GET("/api/v1/vehicle_data/", { params: { query }, signal: abort.signal });
    if (!data) throw failure(response, error);
    state.page = to.page;
    state.cursor = to.cursor ?? null;
    lastPage = data;
    renderRows(data);
    rendered("table");
  } catch (err) {
    if (isAbort(err)) return;
    showError("Loading the records", offline(err));
  } finally {
    if (tableAbort === abort) ui.recordsSection.removeAttribute("aria-busy");
  }
}

// --- chart ---------------------------------------------------------------------------------

const charts = new Charts($<HTMLDivElement>("charts"), (fromMs, toMs) => {
  // Whole seconds that cover the selection; the re-query picks a finer bucket.
  state.from = toInput(Math.floor(fromMs / 1000) * 1000, state.zone);
  state.to = toInput(Math.ceil(toMs / 1000) * 1000, state.zone);
  ui.from.value = state.from;
  ui.to.value = state.to;
  refresh();
});
let chartAbort: AbortController | null = null;

async function loadChart(): Promise<void> {
  chartAbort?.abort();
  if (!state.vehicle) {
    charts.message("Pick a vehicle to see its chart.");
    ui.chartInfo.textContent = "";
    return;
  }
  const abort = (chartAbort = new AbortController());
  ui.chartSection.setAttribute("aria-busy", "true");
  const query: { timezone: string; max_points: number; initial_timestamp?: string; final_timestamp?: string } = {
    timezone: state.zone,
    max_points: charts.maxPoints(),
  };
  if (state.from) query.initial_timestamp = state.from;
  if (state.to) query.final_timestamp = state.to;
  try {
    const { data, error, response } = await api.GET("/api/v1/vehicles/{vehicle_id}/series/", {
      params: { path: { vehicle_id: state.vehicle }, query },
      signal: abort.signal,
    });
    if (response.status === 404) {
      charts.message("No records for this vehicle yet.");
      ui.chartInfo.textContent = "";
      return;
    }
    if (!data) throw failure(response, error);
    const records = data.buckets.reduce((n, b) => n + b.count, 0);
    if (!data.buckets.length) charts.message("No records in this range.");
    else charts.render(data, state.zone);
    ui.chartInfo.textContent = `Bucket: ${formatDuration(data.bucket_seconds)} · ${formatCount(data.buckets.length)} buckets · ${formatCount(records)} records`;
    ui.chartSection.dataset["bucketSeconds"] = String(data.bucket_seconds);
    ui.chartSection.dataset["buckets"] = String(data.buckets.length);
    rendered("chart");
  } catch (err) {
    if (isAbort(err)) return;
    showError("Loading the chart", offline(err));
  } finally {
    if (chartAbort === abort) ui.chartSection.removeAttribute("aria-busy");
  }
}

// --- export --------------------------------------------------------------------------------

async function download(format: "csv" | "json" | "ndjson" | "xlsx", button: HTMLButtonElement): Promise<void> {
  const label = button.textContent;
  button.disabled = true;
  button.textContent = `${label}…`;
  button.setAttribute("aria-busy", "true");
  try {
    // Fetched (not a plain link) so the token goes along and a refusal shows its detail.
    const { data, error, response } = await api.GET("/api/v1/vehicle_data/export/", {
      params: { query: { ...filterQuery(), export: format } },
      parseAs: "blob",
    });
    if (!data) throw failure(response, error);
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") ?? "")?.[1] ?? `vehicle_data.${format}`;
    const url = URL.createObjectURL(data);
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    showError(`Export as ${format.toUpperCase()}`, offline(err));
  } finally {
    button.disabled = false;
    button.textContent = label;
    button.removeAttribute("aria-busy");
  }
}

// --- wiring --------------------------------------------------------------------------------

function refresh(): void {
  writeURL();
  void loadTable({ page: 1 });
  void loadChart();
}

function init(): void {
  readURL();
  ui.token.value = getToken();
  ui.token.addEventListener("change", () => {
    setToken(ui.token.value.trim());
    ui.token.removeAttribute("aria-invalid");
    clearErrors();
    void loadVehicles();
    refresh();
  });

  ui.zone.replaceChildren(...zones().map((z) => new Option(z === browserZone ? `${z} (this browser)` : z, z)));
  ui.zone.value = state.zone;
  ui.zone.addEventListener("change", () => {
    // Keep the same instants, shown in the new zone.
    const from = fromInput(state.from, state.zone);
    const to = fromInput(state.to, state.zone);
    state.zone = ui.zone.value;
    state.from = from === null ? "" : toInput(from, state.zone);
    state.to = to === null ? "" : toInput(to, state.zone);
    ui.from.value = state.from;
    ui.to.value = state.to;
    renderVehicles();
    refresh();
  });

  ui.vehicle.addEventListener("change", () => {
    state.vehicle = ui.vehicle.value;
    renderSummary();
    refresh();
  });
  ui.from.value = state.from;
  ui.to.value = state.to;
  for (const input of [ui.from, ui.to]) {
    input.addEventListener("change", () => {
      state.from = ui.from.value;
      state.to = ui.to.value;
      refresh();
    });
  }
  for (const b of document.querySelectorAll<HTMLButtonElement>("[data-range]")) {
    b.addEventListener("click", () => quickRange(b.dataset["range"] ?? "all"));
  }

  ui.pageSize.value = String(state.pageSize);
  ui.pageSize.addEventListener("change", () => {
    state.pageSize = Number(ui.pageSize.value);
    writeURL();
    void loadTable({ page: 1 });
  });
  ui.next.addEventListener("click", () => {
    if (lastPage?.next_cursor) void loadTable({ page: state.page + 1, cursor: lastPage.next_cursor });
  });
  ui.prev.addEventListener("click", () => {
    if (lastPage?.previous_cursor) void loadTable({ page: Math.max(1, state.page - 1), cursor: lastPage.previous_cursor });
  });
  ui.jump.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const n = Math.floor(Number(ui.pageNumber.value));
    if (n >= 1) void loadTable({ page: n });
  });
  renderHead();

  for (const b of document.querySelectorAll<HTMLButtonElement>("[data-export]")) {
    b.addEventListener("click", () => void download(b.dataset["export"] as "csv", b));
  }

  const uploads = new Uploads($<HTMLUListElement>("uploads"), $<HTMLUListElement>("pending"), {
    done: (vehicleId) => {
      void loadVehicles().then(() => {
        if (!state.vehicle || state.vehicle === vehicleId) refresh();
      });
    },
    error: (what, err) => showError(what, err),
  });
  ui.fileInput.addEventListener("change", () => {
    if (ui.fileInput.files) uploads.add(ui.fileInput.files);
    ui.fileInput.value = "";
  });
  ui.drop.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    ui.drop.classList.add("over");
  });
  ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("over"));
  ui.drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    ui.drop.classList.remove("over");
    const files = [...(ev.dataTransfer?.files ?? [])].filter((f) => /\.csv$/i.test(f.name) || f.type === "text/csv");
    uploads.add(files);
  });

  // First render: with a vehicle in the address bar, everything at once; otherwise the first
  // vehicle once the list is known.
  const vehiclesLoaded = loadVehicles();
  if (state.vehicle) {
    refresh();
  } else {
    void vehiclesLoaded.then(() => {
      state.vehicle = vehicles[0]?.vehicle_id ?? "";
      ui.vehicle.value = state.vehicle;
      renderSummary();
      refresh();
    });
  }
}

init();
