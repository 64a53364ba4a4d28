#!/usr/bin/env bash
# hack/verify-image.sh (`make verify-image`): builds the operator image (hack/build-image.sh,
# cached root filesystem) and checks what it holds from the OCI layout alone: the layout's
# digests, the config (entrypoint, user, version label), the files spec §10 says the image
# carries, and that the binaries, kubectl/oc and the must-gather entry point run inside the
# image's own root filesystem (unpacked, then chroot), so a missing library shows here and
# not on a cluster. Every check is reported; the exit status is 1 when any failed.
#   hack/verify-image.sh [--no-build [LAYOUT]]   (--no-build: check an existing layout,
#                                                 default target/image/oci)
set -euo pipefail
cd "$(dirname "$0")/.."

LAYOUT=target/image/oci
if [[ "${1:-}" == --no-build ]]; then
  LAYOUT="${2:-$LAYOUT}"
else
  bash hack/build-image.sh
fi
version="$(cargo metadata --no-deps --format-version 1 |
  jq -r '.packages[] | select(.name == "lca-operator") | .version')"

WORK="$(mktemp -d)"
trap 'rm -rf --one-file-system "$WORK"' EXIT
failures=0
fail() { echo "verify-image: FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "verify-image: ok: $*"; }

blob() { echo "$LAYOUT/blobs/sha256/${1#sha256:}"; }

# The layout: every blob is what its name says; skopeo (what a push uses) can read it.
for f in "$LAYOUT"/blobs/sha256/*; do
  [[ "$(sha256sum "$f" | cut -d' ' -f1)" == "$(basename "$f")" ]] || fail "blob $f does not match its digest"
done
# Nothing further can be trusted from a corrupt layout.
((failures == 0)) || { echo "verify-image: the layout is corrupt; rebuild it (make image)" >&2; exit 1; }
manifest_digest="$(jq -r --arg t "$version" \
  '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
  "$LAYOUT/index.json")"
[[ -n "$manifest_digest" ]] || { fail "no manifest tagged $version in $LAYOUT/index.json"; exit 1; }
manifest="$(blob "$manifest_digest")"
if skopeo inspect --config "oci:$LAYOUT:$version" >"$WORK/skopeo-config.json" 2>"$WORK/skopeo.err"; then
  pass "skopeo reads oci:$LAYOUT:$version"
else
  fail "skopeo cannot read the layout: $(cat "$WORK/skopeo.err")"
fi

# The config.
config="$(blob "$(jq -r .config.digest "$manifest")")"
check_config() { # JQ-EXPRESSION EXPECTED
  local got
  got="$(jq -c "$1" "$config")"
  [[ "$got" == "$2" ]] && pass "config $1 = $2" || fail "config $1 is $got, expected $2"
}
check_config .config.Entrypoint '["/usr/local/bin/lca-operator"]'
check_config .config.User '"0"'
check_config '.config.Labels.version' "\"$version\""
check_config '.config.Labels["org.opencontainers.image.version"]' "\"$version\""
[[ "$(jq '.layers | length' "$manifest")" == 1 ]] || fail "the manifest has $(jq '.layers | length' "$manifest") layers, expected 1"

# The root filesystem, unpacked as the runtime would (numeric owners, modes kept).
root="$WORK/root"
mkdir "$root"
layer="$(blob "$(jq -r '.layers[0].digest' "$manifest")")"
diff_id="sha256:$(pigz -dc "$layer" | sha256sum | cut -d' ' -f1)"
pigz -dc "$layer" | tar -C "$root" --numeric-owner -xpf -
[[ "$diff_id" == "$(jq -r '.rootfs.diff_ids[0]' "$config")" ]] || fail "the layer's diff_id is not the config's"

check_exec() { [[ -f "$root$1" && -x "$root$1" ]] && pass "$1 executable" || fail "$1 missing or not executable"; }
check_link() { [[ "$(readlink "$root$1")" == "$2" ]] && pass "$1 -> $2" || fail "$1 is not a link to $2"; }
for f in /usr/local/bin/lca-operator /usr/local/bin/lca-cli /usr/bin/kubectl /usr/bin/nsenter \
  /usr/bin/tar /usr/bin/gather /usr/bin/gather_lca /usr/bin/gather_oadp; do
  check_exec "$f"
done
check_link /usr/local/bin/manager lca-operator
check_link /usr/bin/oc kubectl
[[ -f "$root/usr/bin/gather_common" ]] && pass "/usr/bin/gather_common present" || fail "/usr/bin/gather_common missing"
for unit in crates/lca-cli/installation_configuration_files/services/*.service; do
  dest="/usr/local/installation_configuration_files/services/$(basename "$unit")"
  cmp -s "$unit" "$root$dest" && pass "$dest is $unit" || fail "$dest missing or not the repo's $unit"
done
# The build machine's identity must not leak into the image.
for f in /etc/hostname /etc/resolv.conf /etc/hosts; do
  [[ ! -e "$root$f" ]] || fail "$f (the build machine's) is in the image"
done

# in_image ARGV...: runs in the image's root, with /dev and /proc as a runtime would give;
# the mounts live in a private mount namespace and go with it.
in_image() {
  unshare --mount --propagation private -- sh -c \
    'root=$1; shift; mount --rbind /dev "$root/dev" && mount -t proc proc "$root/proc" && exec chroot "$root" "$@"' \
    - "$root" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}
check_run() { # EXPECTED-SUBSTRING ARGV...
  local want=$1 out
  shift
  if ! out="$(in_image "$@" 2>&1)"; then
    fail "'$*' fails in the image: $out"
  elif [[ "$out" != *"$want"* ]]; then
    fail "'$*' in the image says '$out', expected '$want'"
  elif [[ "$out" == *test-hooks* ]]; then
    fail "'$*' in the image is a test build: $out"
  else
    pass "'$*' in the image: $(head -n 1 <<<"$out")"
  fi
}
check_run "lca-operator $version" /usr/local/bin/lca-operator --version
check_run "lca-operator $version" /usr/local/bin/manager --version
check_run "lca-cli $version" /usr/local/bin/lca-cli --version
check_run "Client Version:" kubectl version --client
check_run "Client Version:" oc version --client
check_run "nsenter from util-linux" nsenter --version
check_run "GNU tar" tar --version
# The must-gather entry point, with no cluster: it must run to the end (exit 0) and find a
# client, so the reason it records is an unreachable API server, not a missing command.
if out="$(in_image env BASE_COLLECTION_PATH=/tmp/must-gather /usr/bin/gather 2>&1)"; then
  errors="$(cat "$root/tmp/must-gather/gather-errors.txt" 2>/dev/null || true)"
  if [[ "$errors" == *"API server unreachable"* && "$errors" != *"not found"* ]]; then
    pass "/usr/bin/gather runs in the image (no cluster: $(head -n 1 <<<"$errors"))"
  else
    fail "/usr/bin/gather in the image did not record an unreachable API server: $errors"
  fi
else
  fail "/usr/bin/gather fails in the image: $out"
fi

if ((failures)); then
  echo "verify-image: $failures check(s) failed" >&2
  exit 1
fi
echo "verify-image: image oci:$LAYOUT:$version ($manifest_digest) passed every check"
