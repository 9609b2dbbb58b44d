#!/usr/bin/env bash
# One-shot setup of a deployment, run by the compose service `setup` (temporalio/admin-tools image: it has the
# temporal CLI and curl): the Temporal namespace, the custom search attributes in LTH_SEARCH_ATTRIBUTES
# ("Name=Type ..."), and the S3 bucket. Every step is idempotent, so the service runs on every `up`.
# Reads TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE (also read by the temporal CLI itself), S3_ENDPOINT, S3_BUCKET,
# S3_ACCESS_KEY, S3_SECRET_KEY, LTH_NAMESPACE_RETENTION.
set -euo pipefail
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}" "${LTH_SEARCH_ATTRIBUTES:?}"
: "${S3_ENDPOINT:?}" "${S3_BUCKET:?}" "${S3_ACCESS_KEY:?}" "${S3_SECRET_KEY:?}"
say() { printf '[setup] %s\n' "$*"; }

# The server answers health before its namespace registry is ready; retry the first call for up to a minute.
for i in $(seq 1 30); do
  temporal operator cluster health >/dev/null 2>&1 && break
  [[ $i == 30 ]] && { say "Temporal at $TEMPORAL_ADDRESS is not healthy"; exit 1; }
  sleep 2
done

if temporal operator namespace describe --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
  say "namespace $TEMPORAL_NAMESPACE exists"
else
  say "creating namespace $TEMPORAL_NAMESPACE (retention ${LTH_NAMESPACE_RETENTION:-30d})"
  temporal operator namespace create --namespace "$TEMPORAL_NAMESPACE" --retention "${LTH_NAMESPACE_RETENTION:-30d}"
fi

# A namespace just created reaches the server's namespace cache a few seconds later; wait for it.
for i in $(seq 1 30); do
  existing="$(temporal operator search-attribute list --namespace "$TEMPORAL_NAMESPACE" --output json 2>/dev/null)" && break
  [[ $i == 30 ]] && { say "namespace $TEMPORAL_NAMESPACE did not become usable"; exit 1; }
  sleep 2
done
for spec in $LTH_SEARCH_ATTRIBUTES; do
  name="${spec%%=*}" type="${spec##*=}"
  if grep -q "\"$name\"" <<<"$existing"; then
    say "search attribute $name exists"
  else
    say "creating search attribute $name ($type)"
    temporal operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" --name "$name" --type "$type"
  fi
done

# S3 CreateBucket signed with SigV4 by curl itself, so no S3 client has to be in this image.
s3() { curl -sS -o /dev/null -w '%{http_code}' --aws-sigv4 'aws:amz:us-east-1:s3' --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "$@"; }
code="$(s3 -I "$S3_ENDPOINT/$S3_BUCKET")"
if [[ $code == 200 ]]; then
  say "bucket $S3_BUCKET exists"
else
  say "creating bucket $S3_BUCKET (HEAD answered $code)"
  code="$(s3 -X PUT "$S3_ENDPOINT/$S3_BUCKET")"
  [[ $code == 200 ]] || { say "creating bucket $S3_BUCKET failed with HTTP $code"; exit 1; }
fi
say done
