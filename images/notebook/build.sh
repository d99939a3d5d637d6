#!/usr/bin/env bash
# Builds the single-user notebook image for the docker spawner with no image registry:
# a Debian bookworm root filesystem made by debootstrap, with Debian's Jupyter packages and
# the ohtk module, imported with `docker import`.
#
# The image is tagged ohtkhub-notebook:<content hash> and ohtkhub-notebook:latest. When an
# image with the same content hash exists, nothing is built. Prints the tag.
#
# Usage: images/notebook/build.sh [--mirror URL]   (as root)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
mirror=http://deb.debian.org/debian
if [ "${1:-}" = "--mirror" ]; then mirror=$2; fi

packages=(jupyterhub jupyter-notebook python3-ipykernel python3-pandas python3-matplotlib fonts-tlwg-loma-ttf ca-certificates tini)
hash=$( (cat "$0"; printf '%s\n' "${packages[@]}"; cat "$root"/python/ohtk/*.py) | sha256sum | cut -c1-12)
tag="ohtkhub-notebook:$hash"

if docker image inspect "$tag" >/dev/null 2>&1; then
  docker tag "$tag" ohtkhub-notebook:latest
  echo "$tag"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "build.sh: debootstrap needs root; run: sudo $0" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null; then
  # Another installer may hold the dpkg lock (CI installs several things at once): wait for it.
  apt-get -o DPkg::Lock::Timeout=900 update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq debootstrap >&2
fi

work=$(mktemp -d)
rootfs=$work/rootfs
# debootstrap and this script mount proc (and sys) inside the root filesystem: unmount
# everything under it before deleting, and never delete through a mount that stayed.
cleanup() {
  local status=$? m
  set +e
  for m in $(findmnt -rn -o TARGET | grep -F "$rootfs/" | sort -r); do umount "$m" 2>/dev/null || umount -l "$m"; done
  if findmnt -rn -o TARGET | grep -qF "$rootfs/"; then
    echo "build.sh: $work left in place: something is still mounted under it" >&2
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
echo "build.sh: debootstrap bookworm, then ${packages[*]}" >&2
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -30 "$work/debootstrap.log" >&2
  exit 1
}
# Package scripts (node's among them) expect /proc; policy-rc.d keeps services from starting.
mountpoint -q "$rootfs/proc" || mount -t proc proc "$rootfs/proc"
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod +x "$rootfs/usr/sbin/policy-rc.d"
chroot "$rootfs" apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get install -y -qq --no-install-recommends "${packages[@]}" >"$work/apt.log" 2>&1 || {
  tail -30 "$work/apt.log" >&2
  exit 1
}
umount "$rootfs/proc"
rm -f "$rootfs/usr/sbin/policy-rc.d"

# The ohtk module, importable by every kernel.
install -d "$rootfs/usr/lib/python3/dist-packages/ohtk"
install -m 0644 "$root"/python/ohtk/*.py "$rootfs/usr/lib/python3/dist-packages/ohtk/"
# An unprivileged notebook user, as in Jupyter's Docker images.
chroot "$rootfs" useradd --create-home --uid 1000 --user-group --shell /bin/bash jovyan
chroot "$rootfs" /usr/bin/python3 -c 'import ohtk, pandas, notebook, jupyterhub' >&2
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*

tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'USER jovyan' \
  --change 'WORKDIR /home/jovyan' \
  --change 'ENV HOME=/home/jovyan LANG=C.UTF-8 PATH=/usr/local/bin:/usr/bin:/bin JUPYTERHUB_SINGLEUSER_APP=notebook.notebookapp.NotebookApp' \
  --change 'EXPOSE 8888' \
  --change 'ENTRYPOINT ["/usr/bin/tini", "--"]' \
  --change 'CMD ["jupyterhub-singleuser", "--ip=0.0.0.0", "--port=8888"]' \
  - "$tag" >&2
docker tag "$tag" ohtkhub-notebook:latest
echo "$tag"
