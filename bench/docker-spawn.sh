#!/usr/bin/env bash
# Spawn latency of the docker spawner on the local Docker Engine: the median of 10 starts of a
# real jupyterhub-singleuser container, from the spawner's Start call to the server answering,
# and the spawner's own share of it (volume, container create and start). Needs the notebook
# image (images/notebook/build.sh).
#
#   bench/docker-spawn.sh            # 10 starts
#   N=20 bench/docker-spawn.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec go test ./internal/spawner/docker/ -run '^$' -bench DockerSpawn -benchtime "${N:-10}x"
