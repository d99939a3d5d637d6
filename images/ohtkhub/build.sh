#!/usr/bin/env bash
# Builds the ohtkhub image from the static binary with no base image pull (FROM scratch), then
# checks that the image runs. Tags ohtkhub:<source hash> and ohtkhub:latest and prints the
# first tag. An image with the same source hash is reused.
#
# Usage: images/ohtkhub/build.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

hash=$( (cat "$here/Dockerfile" "$0" go.mod go.sum; git ls-files -z cmd internal python | xargs -0 cat) | sha256sum | cut -c1-12)
tag="ohtkhub:$hash"
if ! docker image inspect "$tag" >/dev/null 2>&1; then
  ctx=$(mktemp -d)
  trap 'rm -rf "$ctx"' EXIT
  # time/tzdata: the Export API's tz parameter works without the zoneinfo files.
  CGO_ENABLED=0 go build -trimpath -tags timetzdata -ldflags '-s -w' -o "$ctx/ohtkhub" ./cmd/ohtkhub
  certs=/etc/ssl/certs/ca-certificates.crt
  if [ ! -f "$certs" ]; then
    echo "build.sh: $certs is missing; install ca-certificates" >&2
    exit 1
  fi
  cp "$certs" "$ctx/ca-certificates.crt"
  mkdir -m 1777 "$ctx/tmp"
  docker build -q -f "$here/Dockerfile" -t "$tag" "$ctx" >&2
fi
docker tag "$tag" ohtkhub:latest

# The image runs: the binary answers, and it finds the CA certificates.
out=$(docker run --rm "$tag" --help 2>&1) || true
if ! grep -q 'usage: ohtkhub' <<<"$out"; then
  echo "build.sh: $tag does not run: $out" >&2
  exit 1
fi
echo "$tag"
