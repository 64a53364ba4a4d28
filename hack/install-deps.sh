#!/usr/bin/env bash
# Installs the Debian packages the tests and the local environment need (idempotent).
# Everything else is built from the project's own files: Rust crates by cargo, etcd and
# kube-apiserver by hack/control-plane.sh.
set -euo pipefail

PACKAGES=(
  ostree libostree-dev      # stateroots in a directory; libostree for set-default on 2022.7
  docker-registry apache2-utils  # loopback OCI registry, htpasswd for its auth
  skopeo podman             # image copy/inspect, private vfs container storage
  pigz                      # the raw-tool baseline of the packing benchmark
  e2fsprogs util-linux      # chattr/lsattr, unshare
  curl ca-certificates
  debootstrap jq            # the operator image's root filesystem and OCI metadata (make image)
)

# kubectl: the machine image ships one; Debian's kubernetes-client is the fallback.
command -v kubectl >/dev/null || PACKAGES+=(kubernetes-client)

missing=()
for p in "${PACKAGES[@]}"; do
  [[ "$p" == \#* ]] && continue
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
