#!/usr/bin/env bash
# Installs the Debian packages ohtkhub's demo and tests use (run as root or with sudo).
# Packages already installed are left alone; nothing else is downloaded.
set -euo pipefail

packages=(
  jupyterhub                   # jupyterhub-singleuser, spawned per user
  jupyter-notebook             # the classic notebook UI
  python3-jupyter-server
  python3-ipykernel
  python3-pandas               # ohtk.export() returns DataFrames
  python3-matplotlib           # the starter notebook's plot
  fonts-tlwg-loma-ttf          # Thai glyphs in plots (report type names)
  chromium                     # end-to-end tests drive headless Chromium
  python3-django-oauth-toolkit # a real Django OAuth Toolkit peer for login tests
  python3-requests-oauthlib    # interoperability tests of the built-in OAuth2 provider
  python3-authlib
  postgresql                   # the api on OHTK's PostgreSQL schema
  postgresql-15-postgis-3      # OHTK stores locations as PostGIS points
  docker-compose               # deploy/compose.yaml and its test
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing ${missing[*]}; run: sudo $0" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
