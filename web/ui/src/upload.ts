// Resumable chunked upload: each file is cut with Blob.slice into 1 MiB chunks, sent a few at a
// time with retries; the upload is remembered in localStorage (vehicle, name, size, mtime), so
// after a reload or a lost connection choosing the file again asks upload_status/ and sends only
// the missing chunks. A 422 shows the row report with a button that finalizes with
// skip_invalid_rows.
import { api, ApiError, failure, offline, type RowError } from "./api";
import { formatCount } from "./time";

export const CHUNK = 1 << 20;
const PARALLEL = 3;
const RETRIES = 4;
const PREFIX = "vehicle-data.upload:";

interface Saved {
  vehicle_id: string;
  file_name: string;
  size: number;
  lastModified: number;
  total_chunks: number;
}

const keyOf = (s: Omit<Saved, "total_chunks">) => PREFIX + JSON.stringify([s.vehicle_id, s.file_name, s.size, s.lastModified]);

function saved(): Saved[] {
  const out: Saved[] = [];
  try {
    for (let i = 0; i < localStorage.length; i++) {
      const k = localStorage.key(i);
      if (!k?.startsWith(PREFIX)) continue;
      const v = JSON.parse(localStorage.getItem(k) ?? "null") as Saved | null;
      if (v) out.push(v);
    }
  } catch {
    /* storage disabled or a foreign value: nothing to resume */
  }
  return out;
}

function forget(s: Omit<Saved, "total_chunks">): void {
  try {
    localStorage.removeItem(keyOf(s));
  } catch {
    /* nothing stored */
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...kids: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e: HTMLElementTagNameMap[K] = Object.assign(document.createElement(tag), props);
  e.append(...kids);
  return e;
}

export interface UploadHooks {
  done(vehicleId: string): void;
  error(what: string, err: ApiError): void;
}

export class Uploads {
  constructor(
    private readonly list: HTMLUListElement,
    private readonly pendingList: HTMLUListElement,
    private readonly hooks: UploadHooks,
  ) {
    this.showPending();
  }

  /** Unfinished uploads from an earlier visit: the file must be chosen again to resume. */
  showPending(): void {
    const items = saved().map((s) =>
      el("li", {}, `Unfinished: ${s.file_name} for vehicle ${s.vehicle_id} (${formatCount(s.total_chunks)} chunks). Choose the same file again to resume.`),
    );
    this.pendingList.replaceChildren(...items);
  }

  add(files: Iterable<File>): void {
    for (const f of files) new Upload(f, this, this.list).mount();
  }

  finished(vehicleId: string): void {
    this.showPending();
    this.hooks.done(vehicleId);
  }

  error(what: string, err: ApiError): void {
    this.hooks.error(what, err);
  }
}

class Upload {
  private readonly row = el("li", { className: "upload-item" });
  private readonly vehicle: HTMLInputElement;
  private readonly bar = el("progress", { max: 100, value: 0 });
  private readonly pct = el("span", { className: "pct" }, "0%");
  private readonly status = el("p", { className: "status" });
  private readonly start = el("button", { type: "button", textContent: "Upload" });
  private readonly report = el("div", { className: "report" });
  private total: number;
  private running = false;

  constructor(
    private readonly file: File,
    private readonly owner: Uploads,
    private readonly list: HTMLUListElement,
  ) {
    this.total = Math.max(1, Math.ceil(file.size / CHUNK));
    const id = `upload-${Math.random().toString(36).slice(2)}`;
    // Default vehicle: the original data set names files <vehicle_id>.csv; an unfinished upload
    // of this very file keeps the vehicle it was started with.
    const earlier = saved().find((s) => s.file_name === file.name && s.size === file.size && s.lastModified === file.lastModified);
    this.vehicle = el("input", { id, type: "text", value: earlier?.vehicle_id ?? file.name.replace(/\.csv$/i, ""), required: true, maxLength: 100 });
    this.row.dataset["file"] = file.name;
    this.bar.setAttribute("aria-label", `Upload progress of ${file.name}`);
    const size = el("span", { className: "help" }, ` ${formatCount(file.size)} bytes, ${this.total} chunk${this.total === 1 ? "" : "s"}`);
    const head = el("div", { className: "upload-head" }, el("strong", {}, file.name), size);
    const label = el("label", { htmlFor: id }, "Vehicle id");
    const controls = el("div", { className: "upload-controls" }, label, this.vehicle, this.start);
    const progress = el("div", { className: "upload-progress" }, this.bar, this.pct);
    this.row.append(head, controls, progress, this.status, this.report);
    if (earlier) this.say(`An earlier upload of this file is unfinished: it resumes where it stopped.`);
    this.start.addEventListener("click", () => void this.run());
    addEventListener("online", () => {
      if (this.row.dataset["state"] === "paused") void this.run();
    });
  }

  mount(): void {
    this.list.append(this.row);
  }

  private say(text: string, state?: string): void {
    this.status.textContent = text;
    if (state) this.row.dataset["state"] = state;
  }

  private progress(done: number): void {
    const p = Math.round((100 * done) / this.total);
    this.bar.value = p;
    this.pct.textContent = `${p}%`;
  }

  private ident(): Omit<Saved, "total_chunks"> {
    return { vehicle_id: this.vehicle.value.trim(), file_name: this.file.name, size: this.file.size, lastModified: this.file.lastModified };
  }

  private async run(): Promise<void> {
    if (this.running) return;
    const id = this.ident();
    if (!id.vehicle_id) {
      this.say("Enter the vehicle id of the rows.", "error");
      this.vehicle.focus();
      return;
    }
    this.running = true;
    this.vehicle.disabled = this.start.disabled = true;
    this.report.replaceChildren();
    try {
      const missing = await this.missing(id);
      try {
        localStorage.setItem(keyOf(id), JSON.stringify({ ...id, total_chunks: this.total } satisfies Saved));
      } catch {
        /* no storage: no resume after a reload, the rest works */
      }
      this.owner.showPending();
      await this.send(id, missing);
      await this.finalize(id, false);
    } catch (err) {
      const e = offline(err);
      this.say(`Paused: ${e.message}. It resumes when the connection is back, or press Retry.`, "paused");
      this.start.textContent = "Retry";
      this.start.disabled = false;
      this.owner.error(`Upload of ${this.file.name}`, e);
    } finally {
      this.running = false;
    }
  }

  /** The chunks to send: all, unless this file's earlier upload is on the server. */
  private async missing(id: Omit<Saved, "total_chunks">): Promise<number[]> {
    const all = Array.from({ length: this.total }, (_, i) => i);
    const earlier = saved().find((s) => keyOf(s) === keyOf(id));
    if (!earlier || earlier.total_chunks !== this.total) return all;
    this.say("Asking the server which chunks it already holds…", "checking");
    const { data, error, response } = await api.GET("/api/v1/vehicle_data/upload_status/", {
      params: { query: { vehicle_id: id.vehicle_id, file_name: id.file_name } },
    });
    if (response.status === 404) return all; // expired or never stored
    if (error || !data) throw failure(response, error);
    if (data.total_chunks !== this.total) return all;
    this.progress(this.total - data.missing_chunks.length);
    if (data.received_chunks.length) this.say(`Resuming: the server holds ${data.received_chunks.length} of ${this.total} chunks.`);
    return data.missing_chunks;
  }

  private async send(id: Omit<Saved, "total_chunks">, missing: number[]): Promise<void> {
    let done = this.total - missing.length;
    this.progress(done);
    this.say(`Uploading ${missing.length} chunk${missing.length === 1 ? "" : "s"}…`, "uploading");
    const queue = [...missing];
    const worker = async () => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        await this.chunk(id, i);
        this.progress(++done);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, queue.length) }, worker));
  }

  /**
   * Sends one chunk; retries what a retry can fix (no answer, 429, 5xx but 507: storage for
   * unfinalized uploads is full, which waiting here does not change), waiting at least the
   * server's Retry-After, then gives up.
   */
  private async chunk(id: Omit<Saved, "total_chunks">, index: number): Promise<void> {
    const blob = this.file.slice(index * CHUNK, (index + 1) * CHUNK, "text/csv");
    for (let attempt = 0; ; attempt++) {
      let err: ApiError;
      let retryAfter = 0;
      try {
        const { error, response } = await api.POST("/api/v1/vehicle_data/upload_chunk/", {
          body: { chunk: "", file_name: id.file_name, chunk_index: index, total_chunks: this.total, vehicle_id: id.vehicle_id },
          bodySerializer: () => {
            const form = new FormData();
            form.append("chunk", blob, id.file_name);
            form.append("file_name", id.file_name);
            form.append("chunk_index", String(index));
            form.append("total_chunks", String(this.total));
            form.append("vehicle_id", id.vehicle_id);
            return form;
          },
        });
        if (response.ok) return;
        err = failure(response, error);
        const retryable = err.status === 429 || (err.status >= 500 && err.status !== 507);
        if (!retryable) throw err; // the request itself is wrong, or a quota is reached
        retryAfter = 1000 * (Number(response.headers.get("Retry-After")) || 0);
      } catch (e) {
        if (e instanceof ApiError && e.status) throw e;
        err = offline(e);
      }
      if (attempt >= RETRIES) throw err;
      await sleep(Math.max(retryAfter, 500 * 2 ** attempt));
    }
  }

  private async finalize(id: Omit<Saved, "total_chunks">, skip: boolean, again = true): Promise<void> {
    this.say(skip ? "Inserting the valid rows…" : "Checking and inserting the rows…", "finalizing");
    const { data, error, response } = await api.POST("/api/v1/vehicle_data/finalize_upload/", {
      body: { vehicle_id: id.vehicle_id, file_name: id.file_name, total_chunks: this.total, skip_invalid_rows: skip },
    });
    if (data) {
      forget(id);
      this.start.hidden = true;
      const invalid = data.rows_invalid ? `, ${formatCount(data.rows_invalid)} invalid skipped` : "";
      this.say(
        `Done: ${formatCount(data.rows_inserted)} rows inserted, ${formatCount(data.rows_duplicate)} duplicates${invalid} (of ${formatCount(data.rows_received)}).`,
        "done",
      );
      this.report.replaceChildren();
      this.owner.finished(id.vehicle_id);
      return;
    }
    const err = failure(response, error);
    const body = error as { missing_chunks?: number[]; rows_invalid?: number; errors?: RowError[] } | undefined;
    if (response.status === 409 && body?.missing_chunks?.length && again) {
      await this.send(id, body.missing_chunks);
      return this.finalize(id, skip, false);
    }
    if (response.status === 422 && body?.errors) {
      this.say(`${err.detail}.`, "invalid");
      this.showReport(id, body.rows_invalid ?? body.errors.length, body.errors);
      return;
    }
    if (response.status === 404) forget(id);
    this.say(`Failed: ${err.message}`, "error");
    this.owner.error(`Upload of ${this.file.name}`, err);
  }

  private showReport(id: Omit<Saved, "total_chunks">, invalid: number, errors: RowError[]): void {
    const head = el("tr", {}, ...["Line", "Column", "Value", "Problem"].map((h) => el("th", { scope: "col" }, h)));
    const rows = errors.map((e) =>
      el("tr", {},
        el("td", { className: "num" }, String(e.line)),
        el("td", {}, e.column ?? el("span", { className: "null" }, "whole row")),
        el("td", {}, el("code", {}, e.value ?? "")),
        el("td", {}, e.message)),
    );
    const skip = el("button", { type: "button", className: "primary skip" }, `Insert the valid rows, skip the ${formatCount(invalid)} invalid`);
    skip.addEventListener("click", async () => {
      skip.disabled = true;
      try {
        await this.finalize(id, true);
      } catch (e) {
        skip.disabled = false;
        this.owner.error(`Upload of ${this.file.name}`, offline(e));
      }
    });
    const more = invalid > errors.length ? ` (the first ${errors.length} shown)` : "";
    this.report.replaceChildren(
      el("p", {}, `${formatCount(invalid)} invalid row${invalid === 1 ? "" : "s"}${more}; nothing was inserted.`),
      el("div", { className: "table-wrap" }, el("table", { className: "row-report" }, el("thead", {}, head), el("tbody", {}, ...rows))),
      skip,
    );
    this.start.hidden = true;
  }
}
