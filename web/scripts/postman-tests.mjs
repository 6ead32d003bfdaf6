// Adds to a Postman collection converted from openapi.yaml (openapi-to-postmanv2) a test script
// per request that fails unless the response status is one the spec documents for that
// operation, is not a 5xx, has a documented media type and, with a token set, is not a 401.
// Also sets the collection variables `baseUrl` (the spec's first absolute server) and
// `bearerToken` (empty: set it to send a token), and gives the chunk upload a real file, so the
// upload requests reach the server's logic instead of stopping at a missing part.
//
//   node scripts/postman-tests.mjs <openapi.yaml> <collection.json> <chunk file>
//
// Fails when a request matches no operation, or an operation has no request, so the checks
// cover the whole spec.
import { readFileSync, writeFileSync } from "node:fs";
import { parse } from "yaml";

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** @typedef {{ key: string, value?: string, type?: string, src?: string | null }} FormParam */
/** @typedef {{ method: string, url: { path?: string[] }, body?: { mode?: string, formdata?: FormParam[] } }} PostmanRequest */
/** @typedef {{ listen: string, script: { type: string, exec: string[] } }} PostmanEvent */
/** @typedef {{ name: string, item?: PostmanItem[], request?: PostmanRequest, event?: PostmanEvent[] }} PostmanItem */
/** @typedef {{ status: string[], media: Record<string, string[]> }} Documented */

const [specPath, collectionPath, chunkFile] = process.argv.slice(2);
if (!specPath || !collectionPath || !chunkFile) {
  console.error("usage: postman-tests.mjs <openapi.yaml> <collection.json> <chunk file>");
  process.exit(2);
}
const chunk = chunkFile; // narrowed here, for use inside walk()

/** @param {string} path a spec path or a Postman path; `:id` and `{id}` are the same, and so are trailing slashes */
const normalize = (path) => "/" + path.split("/").filter(Boolean).map((s) => s.replace(/^:(.+)$/, "{$1}")).join("/");

const spec = parse(readFileSync(specPath, "utf8"));

/** @param {any} response a response object or a $ref to one */
function resolve(response) {
  const ref = response?.$ref;
  if (typeof ref !== "string") return response;
  return ref.replace(/^#\//, "").split("/").reduce((node, key) => node?.[key], spec);
}

/** @type {Map<string, Documented & { operationId: string }>} method + normalized path -> what the spec documents */
const operations = new Map();
for (const [path, item] of Object.entries(spec.paths ?? {})) {
  for (const method of METHODS) {
    const op = item?.[method];
    if (!op) continue;
    /** @type {Record<string, string[]>} */
    const media = {};
    for (const [status, response] of Object.entries(op.responses ?? {})) {
      media[status] = Object.keys(resolve(response)?.content ?? {});
    }
    operations.set(`${method.toUpperCase()} ${normalize(path)}`, {
      operationId: op.operationId ?? `${method} ${path}`,
      status: Object.keys(op.responses ?? {}),
      media,
    });
  }
}

/**
 * The test run by Postman/newman after the request. `documented` is inlined as JSON; statuses
 * may be exact (`404`), ranges (`4XX`) or `default`.
 * @param {string} operationId
 * @param {Documented} documented
 */
function testScript(operationId, documented) {
  return [
    `// Added by web/scripts/postman-tests.mjs from openapi.yaml (${operationId}).`,
    `const documented = ${JSON.stringify(documented)};`,
    "const code = pm.response.code;",
    "const key = documented.status.find((s) => s === String(code))",
    "  || documented.status.find((s) => /^[1-5]XX$/i.test(s) && s[0] === String(code)[0])",
    "  || documented.status.find((s) => s === 'default');",
    `pm.test(${JSON.stringify(`${operationId}: status is documented (${documented.status.join(", ")})`)}, function () {`,
    "  pm.expect(key, 'status ' + code + ' is not in the spec').to.be.a('string');",
    "});",
    `pm.test(${JSON.stringify(`${operationId}: no 5xx`)}, function () {`,
    "  pm.expect(code, pm.response.text().slice(0, 300)).to.be.below(500);",
    "});",
    "if (pm.variables.get('bearerToken')) {",
    `  pm.test(${JSON.stringify(`${operationId}: the bearer token is accepted`)}, function () {`,
    "    pm.expect(code).to.not.equal(401);",
    "  });",
    "}",
    "if (key && documented.media[key] && documented.media[key].length > 0) {",
    `  pm.test(${JSON.stringify(`${operationId}: media type is documented`)}, function () {`,
    "    const type = (pm.response.headers.get('Content-Type') || '').split(';')[0].trim().toLowerCase();",
    "    pm.expect(documented.media[key]).to.include(type);",
    "  });",
    "}",
  ];
}

/** @type {{ item: PostmanItem[], variable?: { key: string, value: string }[] }} */
const collection = JSON.parse(readFileSync(collectionPath, "utf8"));
const seen = new Set();
const problems = [];

/** @param {PostmanItem[]} items */
function walk(items) {
  for (const item of items) {
    if (item.item) {
      walk(item.item);
      continue;
    }
    if (!item.request) continue;
    const key = `${item.request.method.toUpperCase()} ${normalize((item.request.url.path ?? []).join("/"))}`;
    const op = operations.get(key);
    if (!op) {
      problems.push(`request "${item.name}" (${key}) matches no operation of the spec`);
      continue;
    }
    seen.add(key);
    const { operationId, ...documented } = op;
    item.event = (item.event ?? []).filter((e) => e.listen !== "test");
    item.event.push({ listen: "test", script: { type: "text/javascript", exec: testScript(operationId, documented) } });
    for (const param of item.request.body?.mode === "formdata" ? item.request.body.formdata ?? [] : []) {
      if (param.type === "file") param.src = chunk;
    }
  }
}
walk(collection.item);

for (const [key, op] of operations) {
  if (!seen.has(key)) problems.push(`operation ${op.operationId} (${key}) has no request in the collection`);
}
if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}

// The converter takes baseUrl from the first server, which is relative (`/`, for Swagger UI);
// Postman needs an absolute one.
/** @type {{ url?: string }[]} */
const servers = spec.servers ?? [];
const baseUrl = servers.map((s) => s.url ?? "").find((url) => /^https?:\/\//.test(url)) ?? "http://localhost:8080";
collection.variable = [
  ...(collection.variable ?? []).filter((v) => v.key !== "baseUrl" && v.key !== "bearerToken"),
  { key: "baseUrl", value: baseUrl.replace(/\/+$/, "") },
  { key: "bearerToken", value: "" },
];
writeFileSync(collectionPath, JSON.stringify(collection, null, 2) + "\n");
console.log(`${collectionPath}: status checks on ${seen.size} requests`);
