// End-to-end check of Swagger UI at /docs in headless Chromium (Debian's, driven by
// playwright-core; no browser is downloaded): every operation of openapi.yaml is listed, "Try it
// out" on the list endpoint gets a 200, no request leaves the machine. Saves a screenshot.
//
//   VEHICLE_DATA_URL=http://127.0.0.1:8080 node e2e/docs.mjs
//
// CHROMIUM overrides /usr/bin/chromium; ARTIFACTS_DIR (default web/artifacts) gets docs.png.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { parse } from "yaml";

const WEB = join(dirname(fileURLToPath(import.meta.url)), "..");
const baseUrl = process.env["VEHICLE_DATA_URL"];
if (!baseUrl) {
  console.error("docs e2e: set VEHICLE_DATA_URL (e.g. http://127.0.0.1:8080)");
  process.exit(2);
}
const artifacts = process.env["ARTIFACTS_DIR"] || join(WEB, "artifacts");
const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);
const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const LIST = { method: "get", path: "/api/v1/vehicle_data/" };

/** @type {{ method: string, path: string, operationId: string, summary: string }[]} */
const operations = [];
const spec = parse(readFileSync(join(WEB, "..", "openapi.yaml"), "utf8"));
for (const [path, item] of Object.entries(spec.paths ?? {})) {
  for (const method of METHODS) {
    const op = item?.[method];
    if (op) operations.push({ method, path, operationId: op.operationId, summary: op.summary ?? "" });
  }
}
const list = operations.find((o) => o.method === LIST.method && o.path === LIST.path);
if (!list) {
  console.error(`docs e2e: openapi.yaml has no ${LIST.method.toUpperCase()} ${LIST.path}`);
  process.exit(1);
}

/** @type {string[]} */
const failures = [];
/** @type {string[]} requests for hosts other than this machine */
const external = [];
/** @type {string[]} */
const pageErrors = [];
let passed = 0;
/** @param {boolean} ok @param {string} name @param {string} [detail] */
function check(ok, name, detail = "") {
  if (ok) {
    passed++;
    console.log(`ok - ${name}`);
  } else {
    failures.push(name);
    console.log(`not ok - ${name}${detail ? `\n  ${detail}` : ""}`);
  }
}

const profile = mkdtempSync(join(tmpdir(), "vehicle-data-chromium-"));
// A persistent context on a fresh profile directory: nothing from an earlier run is reused.
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env["CHROMIUM"] || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
  ],
  viewport: { width: 1280, height: 900 },
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("request", (request) => {
    const url = new URL(request.url());
    if (["http:", "https:", "ws:", "wss:"].includes(url.protocol) && !LOCAL_HOSTS.has(url.hostname)) {
      external.push(request.url());
    }
  });
  page.on("pageerror", (err) => pageErrors.push(err.message));

  const docsUrl = new URL("docs/", baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`).toString();
  const response = await page.goto(docsUrl, { waitUntil: "load" });
  check(response?.status() === 200, `GET ${docsUrl} is a 200`, `got ${response?.status()}`);
  await page.locator(".swagger-ui .information-container .title").first().waitFor({ timeout: 30_000 });
  await page.locator(".opblock").first().waitFor({ timeout: 30_000 });
  const title = (await page.locator(".information-container .title").first().innerText()).trim();
  check(title.startsWith(spec.info.title), `the page shows the spec's title "${spec.info.title}"`, `got "${title}"`);

  // Each operation is one .opblock whose id ends with its operationId (Swagger UI's deep link).
  for (const op of operations) {
    const block = page.locator(`.opblock[id$="-${op.operationId}"]`);
    const count = await block.count();
    if (count !== 1) {
      check(false, `${op.operationId} is listed`, `found ${count} blocks`);
      continue;
    }
    const method = (await block.locator(".opblock-summary-method").innerText()).trim().toLowerCase();
    const path = await block.locator(".opblock-summary-path").getAttribute("data-path");
    const summary = (await block.locator(".opblock-summary-description").innerText()).trim();
    check(
      method === op.method && path === op.path && summary === op.summary,
      `${op.operationId} is listed as ${op.method.toUpperCase()} ${op.path} "${op.summary}"`,
      `got ${method.toUpperCase()} ${path} "${summary}"`,
    );
  }

  // Try it out on the list endpoint: the parameters come prefilled from the spec's examples.
  const block = page.locator(`.opblock[id$="-${list.operationId}"]`);
  await block.locator(".opblock-summary").first().click();
  await block.getByRole("button", { name: "Try it out" }).click();
  // Wait for the request's outcome, response or network failure, whatever host it went to.
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  /** @type {Promise<{ url: string, status?: number, error?: string }>} */
  const executed = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no request for ${list.path} within 30s of "Execute"`)), 30_000);
    /** @param {import("playwright-core").Request} request */
    const ours = (request) => request.method() === "GET" && new URL(request.url()).pathname === list.path;
    page.on("response", (r) => {
      if (ours(r.request())) resolve({ url: r.url(), status: r.status() });
    });
    page.on("requestfailed", (r) => {
      if (ours(r)) resolve({ url: r.url(), error: r.failure()?.errorText ?? "failed" });
    });
  });
  await block.getByRole("button", { name: "Execute" }).click();
  const live = await executed.finally(() => clearTimeout(timer));
  check(
    live.status === 200 && new URL(live.url).origin === new URL(docsUrl).origin,
    `"Try it out" on ${list.operationId} gets a 200 from the server serving /docs`,
    `${live.url}: ${live.error ?? live.status}`,
  );
  const shown = block.locator(".live-responses-table .response .response-col_status").first();
  await shown.waitFor({ timeout: 30_000 });
  const shownStatus = (await shown.innerText()).trim();
  check(shownStatus.startsWith("200"), "Swagger UI shows the live 200", `shows "${shownStatus}"`);
  const body = (await block.locator(".live-responses-table .response-col_description pre").first().innerText()).trim();
  check(/"vehicleIDs"/.test(body), "Swagger UI shows the live response body", body.slice(0, 200));
} catch (err) {
  check(false, "the Swagger UI page works", err instanceof Error ? err.message : String(err));
} finally {
  check(external.length === 0, "no request left for a non-local host", external.join("\n  "));
  check(pageErrors.length === 0, "no uncaught error in the page", pageErrors.join("\n  "));
  const page = context.pages()[0];
  if (page) {
    mkdirSync(artifacts, { recursive: true });
    const screenshot = join(artifacts, "docs.png");
    await page.screenshot({ path: screenshot, fullPage: true }).then(
      () => console.log(`screenshot: ${screenshot}`),
      (err) => check(false, "screenshot saved", String(err)),
    );
  }
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}

console.log(`docs e2e: ${passed} passed, ${failures.length} failed`);
process.exit(failures.length > 0 ? 1 : 0);
