#!/usr/bin/env bash
# Converts openapi.yaml into a Postman collection (openapi-to-postmanv2) with a status check per
# request, written to web/build/postman/ (not committed: every conversion assigns fresh random
# ids, and Postman can import openapi.yaml itself). With VEHICLE_DATA_URL set it then runs the
# collection with newman against that server: every status must be one the spec documents for
# the operation, never a 5xx. VEHICLE_DATA_TOKEN, if set, is sent as the bearer token.
#
#   bash web/scripts/postman.sh                                  # convert only (make postman)
#   VEHICLE_DATA_URL=http://127.0.0.1:8080 bash web/scripts/postman.sh
set -euo pipefail
WEB=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$(cd "$WEB/.." && pwd)
OUT=${POSTMAN_OUT:-$WEB/build/postman}
ARTIFACTS=${ARTIFACTS_DIR:-$WEB/artifacts}
COLLECTION=$OUT/vehicle-data.postman_collection.json
cd "$WEB"

mkdir -p "$OUT"
# Requests named by summary, grouped by tag, parameters and bodies filled from the spec's examples.
npx --no-install openapi2postmanv2 -s "$ROOT/openapi.yaml" -o "$COLLECTION" -p \
  -O folderStrategy=Tags,parametersResolution=Example,requestNameSource=Fallback >/dev/null
node scripts/postman-tests.mjs "$ROOT/openapi.yaml" "$COLLECTION" "$WEB/postman/chunk-0.csv"

if [ -z "${VEHICLE_DATA_URL:-}" ]; then
  echo "import $COLLECTION into Postman and set its baseUrl (and bearerToken) variable"
  exit 0
fi
mkdir -p "$ARTIFACTS"
npx --no-install newman run "$COLLECTION" \
  --env-var "baseUrl=${VEHICLE_DATA_URL%/}" \
  --env-var "bearerToken=${VEHICLE_DATA_TOKEN:-}" \
  --reporters cli,json --reporter-json-export "$ARTIFACTS/newman${NEWMAN_SUFFIX:-}.json" \
  --color off --disable-unicode --timeout-request 30000
