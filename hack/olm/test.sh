#!/usr/bin/env bash
# hack/olm/test.sh (the last step of `make verify-bundle`): shows that the bundle checks fail
# when they should. On scratch copies of config/ and of a bundle generated from them, never on
# the repository's own files: a CRD field added to config/crd makes the generator's output and
# the drift check differ; bundles broken in the ways OLM refuses (an owned CRD missing, no
# install mode, a kind OLM does not install, an invalid CRD, a Dockerfile whose LABELs
# disagree with annotations.yaml) fail validation; a new kustomization under config/ reaches
# the bundle, and one with a kind OLM cannot install stops the generator.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TOOL="$(bash "$HERE/build.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() {
  echo "not ok - $1"
  [[ -f "$work/out" ]] && sed 's/^/    /' "$work/out" | tail -n 20
  failed=$((failed + 1))
}
# expect_fail NAME PATTERN CMD...: CMD exits non-zero and its output matches PATTERN.
expect_fail() {
  local name="$1" pattern="$2"
  shift 2
  if "$@" >"$work/out" 2>&1; then
    not_ok "$name (exited 0)"
  elif ! grep -qE -- "$pattern" "$work/out"; then
    not_ok "$name (no /$pattern/ in the output)"
  else
    ok "$name"
  fi
}
expect_pass() {
  local name="$1"
  shift
  if "$@" >"$work/out" 2>&1; then ok "$name"; else not_ok "$name"; fi
}

# A scratch repository whose bundle is current: config/, Cargo.toml and a bundle made from them.
new_repo() {
  mkdir -p "$1"
  cp -r "$REPO/config" "$REPO/Cargo.toml" "$1/"
  "$TOOL" generate --repo "$1" 2>/dev/null
}

new_repo "$work/repo"
expect_pass "drift check passes on a current bundle" bash "$HERE/bundle.sh" verify --repo "$work/repo"

# The field goes under the ImageBasedUpgrade schema's spec.properties, as crdgen would write a
# new spec field; the awk keys on the schema's structure, not on a neighbouring field's name.
crd="$work/repo/config/crd/lca.openshift.io_imagebasedupgrades.yaml"
awk '
  state == 0 && /^ *openAPIV3Schema:$/ { state = 1 }
  state == 1 && /^ *spec:$/ { match($0, /^ */); indent = substr($0, 1, RLENGTH); state = 2 }
  { print }
  state == 2 && $0 == indent "  properties:" {
    print indent "    driftProbe:"
    print indent "      description: added by hack/olm/test.sh"
    print indent "      type: string"
    state = 3
  }
' "$crd" >"$work/crd.yaml"
mv "$work/crd.yaml" "$crd"
if grep -q driftProbe "$crd"; then ok "the CRD copy has a new spec field"; else not_ok "the CRD copy has a new spec field (the awk found no spec.properties)"; fi

mkdir -p "$work/regen"
"$TOOL" generate --repo "$work/repo" --out "$work/regen/bundle" --dockerfile "$work/regen/bundle.Dockerfile" 2>/dev/null
expect_fail "generated bundle differs after the CRD change" 'driftProbe' \
  diff -ru "$work/repo/bundle" "$work/regen/bundle"
expect_fail "drift check fails after the CRD change" 'driftProbe.*|make bundle' \
  bash "$HERE/bundle.sh" verify --repo "$work/repo"
# shellcheck disable=SC2016 # the backquotes are the message's own text
if grep -qF 'run `make bundle`' "$work/out"; then ok "drift check says how to fix it"; else not_ok "drift check says how to fix it"; fi

# Broken bundles, each a copy of a valid one.
new_repo "$work/valid"
expect_pass "the generated bundle validates" "$TOOL" validate --dockerfile "$work/valid/bundle.Dockerfile" "$work/valid/bundle"
broken() {
  rm -rf "$work/broken"
  cp -r "$work/valid" "$work/broken"
  echo "$work/broken/bundle"
}
csv_of() { echo "$1/manifests/lifecycle-agent.clusterserviceversion.yaml"; }

b="$(broken)"
rm "$b/manifests/lca.openshift.io_seedgenerators.yaml"
expect_fail "validation fails: the CSV owns a CRD the bundle lacks" 'owned CRD .*seedgenerators.* not found' \
  "$TOOL" validate "$b"

b="$(broken)"
sed -i 's/supported: true/supported: false/' "$(csv_of "$b")"
expect_fail "validation fails: the CSV supports no install mode" 'none of InstallModeTypes are supported' \
  "$TOOL" validate "$b"

b="$(broken)"
printf 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: stray\nspec:\n  containers: [{name: c, image: x}]\n' >"$b/manifests/stray_v1_pod.yaml"
expect_fail "validation fails: a kind OLM does not install" 'Pod is not supported type for registryV1 bundle' \
  "$TOOL" validate "$b"

b="$(broken)"
sed -i '0,/type: string/s//type: strnig/' "$b/manifests/lca.openshift.io_imagebasedupgrades.yaml"
expect_fail "validation fails: an invalid CRD (a printer column of type strnig)" 'strnig' \
  "$TOOL" validate "$b"

b="$(broken)"
sed -i 's/channels.v1=stable/channels.v1=beta/' "$work/broken/bundle.Dockerfile"
expect_fail "validation fails: Dockerfile LABELs disagree with annotations.yaml" 'LABEL operators.operatorframework.io.bundle.channels.v1' \
  "$TOOL" validate --dockerfile "$work/broken/bundle.Dockerfile" "$b"

# The generator reads config/ as it is: a new kustomization directory reaches the bundle...
new_repo "$work/extra"
mkdir "$work/extra/config/extra"
printf 'resources:\n  - cm.yaml\n' >"$work/extra/config/extra/kustomization.yaml"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: drift-probe\n  namespace: openshift-lifecycle-agent\ndata: {a: b}\n' >"$work/extra/config/extra/cm.yaml"
"$TOOL" generate --repo "$work/extra" 2>/dev/null
if [[ -f "$work/extra/bundle/manifests/drift-probe_v1_configmap.yaml" ]] && ! grep -q namespace: "$work/extra/bundle/manifests/drift-probe_v1_configmap.yaml"; then
  ok "a new config/ kustomization reaches the bundle (namespace left to OLM)"
else
  not_ok "a new config/ kustomization reaches the bundle (namespace left to OLM)"
fi
# ... and a kind OLM would refuse stops the generator, naming where it came from.
printf -- '---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: stray\n  namespace: openshift-lifecycle-agent\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: x}]\n' >>"$work/extra/config/extra/cm.yaml"
expect_fail "generation fails on a kind OLM does not accept" 'config/extra renders Job.* stray.*OLM does not accept kind Job' \
  "$TOOL" generate --repo "$work/extra"

echo "$passed passed, $failed failed"
((failed == 0))
