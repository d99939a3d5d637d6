#!/usr/bin/env bash
# Runs the whole test suite: installs the Debian packages the tests use (scripts/install-deps.sh),
# builds the notebook image the docker spawner's tests run (images/notebook/build.sh, reused
# while its content hash is unchanged), vets the code and runs every test against the real
# parts. Run as root: the image build uses debootstrap. Extra arguments go to go test.
#
#   scripts/test.sh
#   scripts/test.sh -run TestIntegrationDocker ./internal/hub/
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
images/notebook/build.sh >/dev/null
go vet ./...
if [ $# -eq 0 ]; then set -- ./...; fi
go test -count=1 -timeout 45m "$@"
