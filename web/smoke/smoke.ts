// Smoke test of the generated TypeScript client (gen/ts/schema.d.ts + openapi-fetch) against a
// live server: what a front-end does, type-checked by `tsc --noEmit` and run by `tsx`.
//
//   VEHICLE_DATA_URL=http://127.0.0.1:8080 [VEHICLE_DATA_TOKEN=...] npx tsx smoke/smoke.ts
//
// With VEHICLE_DATA_TOKEN set, requests carry it, and a create without it must be a 401.
// Exits 1 on the first mismatch, naming it.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import createClient from "openapi-fetch";
import type { paths, SchemaVehicleData, SchemaVehicleDataInput } from "../../gen/ts/schema.js";

const baseUrl = process.env["VEHICLE_DATA_URL"];
if (!baseUrl) {
  console.error("smoke: set VEHICLE_DATA_URL (e.g. http://127.0.0.1:8080)");
  process.exit(2);
}
const token = process.env["VEHICLE_DATA_TOKEN"] ?? "";

const client = createClient<paths>({
  baseUrl,
  headers: token ? { Authorization: `Bearer ${token}` } : {},
});

let passed = 0;
async function step(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    console.error(`not ok - ${name}\n${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
  passed++;
  console.log(`ok - ${name}`);
}

// A vehicle id of our own, so reruns against the same database never collide.
const vehicleId = `smoke-${randomBytes(4).toString("hex")}`;

// Three samples; the second is sent with an offset and comes back in UTC, the third is parked.
const inputs: SchemaVehicleDataInput[] = [
  { vehicle_id: vehicleId, timestamp: "2024-06-01T12:00:00Z", speed: 55, odometer: 1234.5, soc: 80, elevation: 10.5, shift_state: "D" },
  { vehicle_id: vehicleId, timestamp: "2024-06-01T14:00:05+02:00", speed: 0, odometer: 1234.75, soc: 79, elevation: -3, shift_state: "R" },
  { vehicle_id: vehicleId, timestamp: "2024-06-01 12:00:10", speed: null, odometer: 1235, soc: 78, elevation: 0, shift_state: null },
];
const wantTimestamps = ["2024-06-01T12:00:00Z", "2024-06-01T12:00:05Z", "2024-06-01T12:00:10Z"];
const created: SchemaVehicleData[] = [];

const csvHeader = "id,vehicle_id,timestamp,speed,odometer,soc,elevation,shift_state";
const csvRow = (r: SchemaVehicleData): string =>
  [r.id, r.vehicle_id, r.timestamp, r.speed ?? "", r.odometer, r.soc, r.elevation, r.shift_state ?? ""].join(",");

if (token) {
  await step("create without a token is a 401 with detail and WWW-Authenticate", async () => {
    const anonymous = createClient<paths>({ baseUrl });
    const { data, error, response } = await anonymous.POST("/api/v1/vehicle_data/", { body: inputs[0]! });
    assert.equal(response.status, 401, `status: got ${response.status}, want 401`);
    assert.equal(data, undefined);
    assert.ok(error?.detail, `401 body has no detail: ${JSON.stringify(error)}`);
    assert.match(response.headers.get("WWW-Authenticate") ?? "", /^Bearer\b/, "WWW-Authenticate header");
  });
}

await step(`create ${inputs.length} records for ${vehicleId}`, async () => {
  for (const [i, body] of inputs.entries()) {
    const { data, error, response } = await client.POST("/api/v1/vehicle_data/", { body });
    assert.equal(response.status, 201, `record ${i}: status ${response.status}, body ${JSON.stringify(error)}`);
    assert.ok(data, `record ${i}: no body`);
    assert.ok(Number.isSafeInteger(data.id) && data.id > 0, `record ${i}: id ${data.id}`);
    assert.deepEqual(data, { ...body, id: data.id, timestamp: wantTimestamps[i] }, `record ${i}: stored record`);
    assert.equal(response.headers.get("Location"), `/api/v1/vehicle_data/${data.id}/`, `record ${i}: Location`);
    created.push(data);
  }
});

await step("a duplicate (vehicle_id, timestamp) is a 409 with detail", async () => {
  const { error, response } = await client.POST("/api/v1/vehicle_data/", { body: inputs[0]! });
  assert.equal(response.status, 409, `status: got ${response.status}, want 409`);
  assert.ok(error?.detail, `409 body has no detail: ${JSON.stringify(error)}`);
});

await step("retrieve one record by id", async () => {
  const want = created[1]!;
  const { data, response } = await client.GET("/api/v1/vehicle_data/{id}/", { params: { path: { id: want.id } } });
  assert.equal(response.status, 200);
  assert.deepEqual(data, want);
});

await step("list with vehicle_id, initial_timestamp and ordering", async () => {
  const { data, error, response } = await client.GET("/api/v1/vehicle_data/", {
    params: {
      query: {
        vehicle_id: vehicleId,
        // 14:00:05 in Berlin (summer time) is 12:00:05Z: the first record is left out.
        initial_timestamp: "2024-06-01 14:00:05",
        timezone: "Europe/Berlin",
        ordering: "-timestamp",
        page_size: 10,
      },
    },
  });
  assert.equal(response.status, 200, `status ${response.status}, body ${JSON.stringify(error)}`);
  assert.ok(data);
  assert.deepEqual(Object.keys(data).sort(), ["count", "next", "next_cursor", "previous", "previous_cursor", "results", "vehicleIDs"]);
  assert.equal(data.count, 2, "count");
  assert.equal(data.next, null, "next");
  assert.equal(data.previous, null, "previous");
  assert.equal(data.next_cursor, null, "next_cursor");
  assert.equal(data.previous_cursor, null, "previous_cursor");
  assert.deepEqual(data.results, [created[2], created[1]], "results, newest first");
  assert.ok(data.vehicleIDs.includes(vehicleId), "vehicleIDs lists our vehicle");
  assert.deepEqual(data.vehicleIDs, [...data.vehicleIDs].sort(), "vehicleIDs sorted");
});

await step("paging: next keeps the filters", async () => {
  const { data, response } = await client.GET("/api/v1/vehicle_data/", {
    params: { query: { vehicle_id: vehicleId, ordering: "timestamp", page_size: 2 } },
  });
  assert.equal(response.status, 200);
  assert.ok(data?.next, "next is set");
  const next = new URL(data.next);
  assert.equal(next.searchParams.get("vehicle_id"), vehicleId, `next ${data.next}`);
  assert.equal(next.searchParams.get("page"), "2", `next ${data.next}`);
  assert.deepEqual(data.results, created.slice(0, 2));
  assert.ok(data.next_cursor, "next_cursor is set");
});

await step("paging by cursor: the page after, then back", async () => {
  const first = await client.GET("/api/v1/vehicle_data/", {
    params: { query: { vehicle_id: vehicleId, ordering: "timestamp", page_size: 1 } },
  });
  assert.ok(first.data?.next_cursor, "next_cursor on page 1");
  const second = await client.GET("/api/v1/vehicle_data/", {
    params: { query: { vehicle_id: vehicleId, ordering: "timestamp", page_size: 1, cursor: first.data.next_cursor } },
  });
  assert.equal(second.response.status, 200);
  assert.deepEqual(second.data?.results, created.slice(1, 2));
  assert.ok(second.data?.next && new URL(second.data.next).searchParams.get("cursor"), "next link carries a cursor");
  const back = await client.GET("/api/v1/vehicle_data/", {
    params: { query: { vehicle_id: vehicleId, ordering: "timestamp", page_size: 1, cursor: second.data.previous_cursor ?? "" } },
  });
  assert.deepEqual(back.data?.results, created.slice(0, 1));
  const tampered = await client.GET("/api/v1/vehicle_data/", {
    params: { query: { vehicle_id: vehicleId, ordering: "-timestamp", cursor: first.data.next_cursor } },
  });
  assert.equal(tampered.response.status, 400, "a cursor used with another ordering");
  assert.deepEqual(tampered.error?.errors?.map((e) => e.field), ["cursor"]);
});

await step("series: buckets of the vehicle", async () => {
  const { data, response } = await client.GET("/api/v1/vehicles/{vehicle_id}/series/", {
    params: { path: { vehicle_id: vehicleId }, query: { max_points: 1000, fields: "speed,soc" } },
  });
  assert.equal(response.status, 200);
  assert.ok(data);
  assert.deepEqual(data.fields, ["speed", "soc"]);
  assert.equal(data.buckets.reduce((n, b) => n + b.count, 0), created.length, "every record in a bucket");
});

await step("a malformed parameter is a 400 naming it", async () => {
  const { error, response } = await client.GET("/api/v1/vehicle_data/", { params: { query: { page_size: 0 } } });
  assert.equal(response.status, 400);
  assert.ok(error?.detail, "detail");
  assert.deepEqual(error.errors?.map((e) => e.field), ["page_size"]);
});

await step("CSV export: attachment, header line and rows", async () => {
  const url = new URL("api/v1/vehicle_data/export/", baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`);
  url.search = new URLSearchParams({ vehicle_id: vehicleId, ordering: "timestamp", export: "csv" }).toString();
  const response = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  assert.equal(response.status, 200, `status ${response.status}`);
  assert.match(response.headers.get("Content-Type") ?? "", /^text\/csv\b/, "Content-Type");
  assert.equal(response.headers.get("Content-Disposition"), `attachment; filename="${vehicleId}.csv"`);
  const lines = (await response.text()).split(/\r?\n/);
  assert.equal(lines.at(-1), "", "the file ends with a line break");
  assert.deepEqual(lines.slice(0, -1), [csvHeader, ...created.map(csvRow)]);
});

console.log(`smoke: ${passed} passed against ${baseUrl}${token ? " (with a token)" : ""}`);
