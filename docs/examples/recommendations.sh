#!/usr/bin/env bash
# Get recommendations from embedrec with curl.
#   EMBEDREC_API_URL=http://127.0.0.1:8000 EMBEDREC_API_KEY=sk_live_... bash recommendations.sh user_0001
set -euo pipefail
API_URL=${EMBEDREC_API_URL:-http://127.0.0.1:8000}
curl -sS --fail-with-body -X POST "$API_URL/api/v1/recommendations" \
  -H "Authorization: Bearer $EMBEDREC_API_KEY" \
  -H "Content-Type: application/json" \
  -d "{\"user_id\": \"${1:-user_0001}\", \"count\": 5}"
echo
