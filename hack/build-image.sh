#!/usr/bin/env bash
# hack/build-image.sh (`make image`): builds the operator image as an OCI image layout in
# target/image/oci, tagged with the workspace version, without a container engine: the
# development machines have none and reach no base-image registry.
#
# The image is one layer: a Debian minbase root filesystem of the release the binaries are
# built on (made by debootstrap, cached as a tarball in
# ${LCA_CACHE_DIR:-$HOME/.cache/lca-rs}/image/ so later builds need no network) plus the
# release binaries (lca-operator, with upstream's command name `manager` beside it, and
# lca-cli), kubectl as kubectl and oc (hack/kubectl.sh) for the must-gather scripts, the
# units `lca-cli create` installs, and the must-gather scripts: what spec §10 says upstream's
# image carries. Unchanged inputs give the same digest: sorted tar entries, numeric owners,
# every mtime SOURCE_DATE_EPOCH (default: HEAD's commit time), gzip without a timestamp.
#
#   IMAGE_PUSH=<ref>   afterwards, `skopeo copy` the image there (docker:// is assumed when
#                      <ref> names no transport); IMAGE_PUSH_TLS_VERIFY=false for a plain-HTTP
#                      registry; credentials as for skopeo (REGISTRY_AUTH_FILE, ...).
# Prints `phase <name> <seconds>` lines on stderr (hack/bench-image reads them) and, last,
# the manifest digest and sizes on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

bash hack/install-deps.sh

# The image's libraries must be the ones the binaries were linked against: same release.
RELEASE="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
[[ -n "$RELEASE" ]] || { echo "build-image: cannot tell the Debian release from /etc/os-release" >&2; exit 1; }
MIRROR="${LCA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Run-time needs only: libostree-1-1 brings every library `ldd` lists for both binaries
# (glib, gpgme, libarchive, curl, ...); ca-certificates for registries with public CAs;
# util-linux (nsenter) and tar are Essential, named so the list says what the image relies on.
PACKAGES=(libostree-1-1 ca-certificates util-linux tar)

CACHE_DIR="${LCA_CACHE_DIR:-$HOME/.cache/lca-rs}/image"
LAYOUT="$PWD/target/image/oci"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"

phase_start=$EPOCHREALTIME
phase() {
  awk -v name="$1" -v a="$phase_start" -v b="$EPOCHREALTIME" \
    'BEGIN { printf "phase %s %.1f\n", name, b - a }' >&2
  phase_start=$EPOCHREALTIME
}

# remove DIR: debootstrap mounts /proc and /sys in its target and a failed run may leave them;
# rm must never follow a mount into the host.
remove() {
  local m
  while read -r m; do umount -l "$m" 2>/dev/null || true; done \
    < <(findmnt -rn -o TARGET | grep -F -- "$1/" | sort -r)
  rm -rf --one-file-system "$1"
}
WORK="$(mktemp -d)"
trap 'remove "$WORK"' EXIT

# Everything that decides the root filesystem's content is PACKAGES, RELEASE and this
# function, whose text is part of the cache key: editing it rebuilds the cached tarball.
# Called under `if !`, where set -e does not apply: each step returns on failure itself, or a
# broken tree would be cached.
make_rootfs() {
  local root=$1
  debootstrap --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    "$RELEASE" "$root" "$MIRROR" || return
  # Nothing installs packages into the image later: apt's state, caches, logs, docs (the
  # copyright files stay: the image is redistributed), man pages and translations go.
  rm -rf --one-file-system \
    "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/var/lib/dpkg/*-old "$root"/var/cache/ldconfig/aux-cache "$root"/var/log/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
    "$root"/usr/share/lintian "$root"/usr/share/linda \
    "$root"/dev/* "$root"/run/* "$root"/tmp/* "$root"/proc/* "$root"/sys/* || return
  find "$root/usr/share/doc" -mindepth 1 \( -type f -o -type l \) ! -name copyright -delete || return
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete || return
  # debootstrap copies these from the build machine; the container runtime provides its own.
  rm -f "$root/etc/hostname" "$root/etc/resolv.conf" "$root/etc/hosts" "$root/etc/machine-id"
}

key="$( { echo "$RELEASE"; echo "${PACKAGES[*]}"; declare -f make_rootfs; } | sha256sum | cut -c1-16)"
ROOTFS_TAR="$CACHE_DIR/rootfs-$RELEASE-$key.tar.gz"
if [[ ! -f "$ROOTFS_TAR" ]]; then
  mkdir -p "$CACHE_DIR"
  exec 8>"$ROOTFS_TAR.lock"
  flock 8
  if [[ ! -f "$ROOTFS_TAR" ]]; then
    echo "build-image: debootstrap $RELEASE minbase + ${PACKAGES[*]} (first build only)" >&2
    if ! make_rootfs "$WORK/bootstrap" >"$WORK/debootstrap.log" 2>&1; then
      tail -n 30 "$WORK/debootstrap.log" >&2
      echo "build-image: building the root filesystem failed (log above)" >&2
      exit 1
    fi
    tar -C "$WORK/bootstrap" --numeric-owner -cf - . | pigz >"$ROOTFS_TAR.tmp"
    mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    remove "$WORK/bootstrap"
  fi
  exec 8>&-
fi
phase rootfs

# Production binaries: without `test-hooks`, which --version would name. IMAGE_PROFILE picks
# the cargo profile: `release` (the default, the shipped image) or `dev` (CI's check of the
# packaging: after the tests only the crates whose features differ from the test build's
# binaries are rebuilt, where any other profile would build every dependency again). `dev`
# replaces target/debug's test builds of the two binaries: not while e2e tests run.
profile="${IMAGE_PROFILE:-release}"
cargo build --profile "$profile" -p lca-operator -p lca-cli --bins
profile_dir=$profile
[[ $profile == dev ]] && profile_dir=debug
target_dir="$(cargo metadata --no-deps --format-version 1 | jq -r .target_directory)/$profile_dir"
phase cargo

KUBECTL="$(bash hack/kubectl.sh)"
phase kubectl

root="$WORK/root"
mkdir "$root"
pigz -dc "$ROOTFS_TAR" | tar -C "$root" --numeric-owner -xpf -
install -m 0755 "$target_dir/lca-operator" "$target_dir/lca-cli" "$root/usr/local/bin/"
ln -s lca-operator "$root/usr/local/bin/manager"
for bin in lca-operator lca-cli; do
  # Checked on the copy: another build may replace target/release meanwhile.
  out="$("$root/usr/local/bin/$bin" --version)"
  if [[ "$out" == *test-hooks* ]]; then
    echo "build-image: $bin is a test build ($out); refusing to put it in the image" >&2
    exit 1
  fi
done
install -m 0755 "$KUBECTL" "$root/usr/bin/kubectl"
ln -s kubectl "$root/usr/bin/oc"
services="$root/usr/local/installation_configuration_files/services"
install -d -m 0755 "$services"
install -m 0644 crates/lca-cli/installation_configuration_files/services/*.service "$services/"
for f in gather gather_common gather_lca gather_oadp; do
  # Modes from git (755 or 644), not from the checkout's umask.
  mode=0644; [[ -x "must-gather/$f" ]] && mode=0755
  install -m "$mode" "must-gather/$f" "$root/usr/bin/$f"
done

# The layer: names without a leading ./, sorted, numeric owners, one mtime, no atime/ctime
# and no PID in pax header names, so equal trees give equal bytes.
(
  cd "$root"
  shopt -s nullglob
  entries=(*)
  LC_ALL=C tar --sort=name --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" --format=posix \
    --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
    -cf "$WORK/layer.tar" -- "${entries[@]}"
)
diff_id="sha256:$(sha256sum "$WORK/layer.tar" | cut -d' ' -f1)"
layer_bytes_uncompressed=$(stat -c %s "$WORK/layer.tar")
pigz -n -m -c "$WORK/layer.tar" >"$WORK/layer.tar.gz"
phase layer

meta="$(cargo metadata --no-deps --format-version 1 |
  jq -c '.packages[] | select(.name == "lca-operator") | {version, license, repository, description}')"
version="$(jq -r .version <<<"$meta")"
created="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
revision="$(git rev-parse HEAD)"

mkdir -p "$WORK/oci/blobs/sha256"
# blob FILE: moves FILE into the layout under its digest; prints "<digest> <size>".
blob() {
  local sum size
  sum="$(sha256sum "$1" | cut -d' ' -f1)"
  size="$(stat -c %s "$1")"
  mv "$1" "$WORK/oci/blobs/sha256/$sum"
  echo "sha256:$sum $size"
}
read -r layer_digest layer_size < <(blob "$WORK/layer.tar.gz")

jq -n -c \
  --arg created "$created" --arg diff_id "$diff_id" --arg version "$version" \
  --arg revision "$revision" --argjson meta "$meta" \
  --arg base "debian $RELEASE (debootstrap minbase) + ${PACKAGES[*]}" '{
    created: $created,
    architecture: "amd64",
    os: "linux",
    config: {
      User: "0",
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Entrypoint: ["/usr/local/bin/lca-operator"],
      WorkingDir: "/",
      Labels: {
        name: "lifecycle-agent-operator",
        version: $version,
        "org.opencontainers.image.title": "lca-rs lifecycle-agent-operator",
        "org.opencontainers.image.description": $meta.description,
        "org.opencontainers.image.version": $version,
        "org.opencontainers.image.revision": $revision,
        "org.opencontainers.image.created": $created,
        "org.opencontainers.image.licenses": $meta.license,
        "org.opencontainers.image.source": $meta.repository
      } | with_entries(select(.value != null and .value != ""))
    },
    rootfs: {type: "layers", diff_ids: [$diff_id]},
    history: [{created: $created, created_by: ("hack/build-image.sh: " + $base + ", the lca-rs binaries, kubectl, units, must-gather")}]
  }' >"$WORK/config.json"
read -r config_digest config_size < <(blob "$WORK/config.json")

jq -n -c \
  --arg cd "$config_digest" --argjson cs "$config_size" \
  --arg ld "$layer_digest" --argjson ls "$layer_size" '{
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
    layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $ld, size: $ls}]
  }' >"$WORK/manifest.json"
read -r manifest_digest manifest_size < <(blob "$WORK/manifest.json")

jq -n -c --arg md "$manifest_digest" --argjson ms "$manifest_size" --arg tag "$version" '{
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md, size: $ms,
                 annotations: {"org.opencontainers.image.ref.name": $tag}}]
  }' >"$WORK/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$WORK/oci/oci-layout"

# Replaced whole: a half-written layout is never what a push or a check reads.
mkdir -p "$(dirname "$LAYOUT")"
rm -rf "$LAYOUT.old"
[[ -e "$LAYOUT" ]] && mv "$LAYOUT" "$LAYOUT.old"
mv "$WORK/oci" "$LAYOUT"
rm -rf "$LAYOUT.old"
phase oci

if [[ -n "${IMAGE_PUSH:-}" ]]; then
  dest="$IMAGE_PUSH"
  [[ "$dest" == *://* || "$dest" =~ ^(oci|oci-archive|docker-archive|docker-daemon|containers-storage|dir): ]] ||
    dest="docker://$dest"
  push=(skopeo copy)
  [[ -n "${IMAGE_PUSH_TLS_VERIFY:-}" ]] && push+=(--dest-tls-verify="$IMAGE_PUSH_TLS_VERIFY")
  "${push[@]}" "oci:$LAYOUT:$version" "$dest"
  phase push
fi

echo "image: oci:${LAYOUT#"$PWD/"}:$version"
echo "manifest_digest: $manifest_digest"
echo "compressed_bytes: $((layer_size + config_size + manifest_size)) (layer $layer_size, config $config_size, manifest $manifest_size)"
echo "layer_uncompressed_bytes: $layer_bytes_uncompressed"
