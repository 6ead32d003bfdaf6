// The API client: openapi-fetch typed by gen/ts/schema.d.ts, with the token from the token field,
// and the one way every failure becomes a message that carries the server's `detail`.
import createClient from "openapi-fetch";
import type { paths, components } from "../../../gen/ts/schema";

export type Record_ = components["schemas"]["VehicleData"];
export type Page = components["schemas"]["VehicleDataPage"];
export type Vehicle = components["schemas"]["Vehicle"];
export type Series = components["schemas"]["Series"];
export type SeriesStats = components["schemas"]["SeriesStats"];
export type RowError = components["schemas"]["RowError"];
export type Problem = components["schemas"]["Problem"];
export type ListQuery = NonNullable<paths["/api/v1/vehicle_data/"]["get"]["parameters"]["query"]>;

const TOKEN_KEY = "vehicle-data.token";

export function getToken(): string {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}

export function setToken(token: string): void {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: the token lasts for this page only */
  }
  memoryToken = token;
}

let memoryToken = getToken();

// Read your writes on a standby (README, "Reads on a standby"): the log position of the latest
// write this page made (a finalize's X-Write-LSN) goes back with every read as X-Min-LSN, so a
// standby that has not replayed it yet leaves the read to the primary, and the rows just
// uploaded are in the very next table and chart.
let minLSN = "";

export const api = createClient<paths>({ baseUrl: location.origin });
api.use({
  onRequest({ request }) {
    if (memoryToken) request.headers.set("Authorization", `Bearer ${memoryToken}`);
    if (minLSN && request.method === "GET") request.headers.set("X-Min-LSN", minLSN);
    return request;
  },
  onResponse({ response }) {
    const lsn = response.headers.get("X-Write-LSN");
    if (lsn && laterLSN(lsn, minLSN)) minLSN = lsn;
    return response;
  },
});

/** Whether log position a ("16/B374D848") is past b; an unreadable a never is, anything is past "". */
export function laterLSN(a: string, b: string): boolean {
  const pa = parseLSN(a);
  if (pa === undefined) return false;
  const pb = parseLSN(b);
  return pb === undefined || pa > pb;
}

function parseLSN(s: string): bigint | undefined {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(s);
  return m ? (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`) : undefined;
}

/** An answer that is not a success, or no answer at all. */
export class ApiError extends Error {
  constructor(
    readonly status: number, // 0: no answer (network down, aborted)
    readonly detail: string,
    readonly body: unknown = undefined,
  ) {
    super(status ? `${status}: ${detail}` : detail);
  }

  /** The body's list of bad fields, parameters or rows, as lines. */
  get lines(): string[] {
    const errors = (this.body as { errors?: unknown } | undefined)?.errors;
    if (!Array.isArray(errors)) return [];
    return errors.slice(0, 10).map((e: Record<string, unknown>) =>
      "field" in e ? `${String(e["field"])}: ${String(e["message"])}` : `line ${String(e["line"])}: ${String(e["message"])}`,
    );
  }
}

/** The error for a failed openapi-fetch call (its response and parsed error body). */
export function failure(response: Response, body: unknown): ApiError {
  const detail = (body as Problem | undefined)?.detail;
  return new ApiError(response.status, typeof detail === "string" && detail ? detail : response.statusText || "request failed", body);
}

/** Wraps a thrown fetch error (network failure, abort) as an ApiError. */
export function offline(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new ApiError(0, `no answer from the server (${msg})`);
}

export const isAbort = (err: unknown): boolean => err instanceof DOMException && err.name === "AbortError";
