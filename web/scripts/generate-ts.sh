#!/usr/bin/env bash
# Generates gen/ts/schema.d.ts (TypeScript types for openapi-fetch) from openapi.yaml with the
# openapi-typescript pinned in web/package-lock.json. Called by `make web-generate`, which
# `make generate` runs last, so `make check-generated` catches drift here as for the Go code.
set -euo pipefail
WEB=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$(cd "$WEB/.." && pwd)
cd "$WEB"

# Install the locked tree when it is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci
fi

# TS_OUT writes elsewhere (web/scripts/ci.sh compares a fresh copy with the committed one).
OUT=${TS_OUT:-$ROOT/gen/ts/schema.d.ts}
mkdir -p "$(dirname "$OUT")"
# --root-types also exports each component as a named type (SchemaVehicleData, ...).
npx --no-install openapi-typescript "$ROOT/openapi.yaml" --output "$OUT" --root-types
