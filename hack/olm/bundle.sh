#!/usr/bin/env bash
# hack/olm/bundle.sh: `make bundle` and `make verify-bundle`'s drift and validation steps.
#
#   bundle.sh generate [--repo DIR]   regenerate DIR/bundle/ and DIR/bundle.Dockerfile from
#                                     DIR/config/ and DIR/Cargo.toml's version, then validate
#   bundle.sh verify [--repo DIR]     fail when DIR/bundle/ or DIR/bundle.Dockerfile differ from
#                                     what DIR/config/ generates, or when the bundle is invalid
#
# DIR defaults to this repository (hack/olm/test.sh points it at scratch copies). IMG=<ref>
# overrides the operator image that config/manager's Deployment names.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

cmd="${1:-}"
shift || true
if [[ "${1:-}" == "--repo" ]]; then REPO="$(cd "$2" && pwd)"; shift 2; fi
(($# == 0)) || { echo "usage: $0 generate|verify [--repo DIR]" >&2; exit 2; }

TOOL="$(bash "$HERE/build.sh")"
image_args=()
[[ -n "${IMG:-}" ]] && image_args=(--image "$IMG")

case "$cmd" in
  generate)
    "$TOOL" generate --repo "$REPO" "${image_args[@]}"
    "$TOOL" validate --dockerfile "$REPO/bundle.Dockerfile" "$REPO/bundle"
    ;;
  verify)
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    "$TOOL" generate --repo "$REPO" --out "$work/bundle" --dockerfile "$work/bundle.Dockerfile" "${image_args[@]}"
    status=0
    # -N: a file config/ no longer produces, or a new one, shows as a whole-file diff.
    diff -ruN "$REPO/bundle" "$work/bundle" >"$work/diff" 2>&1 || status=1
    diff -uN "$REPO/bundle.Dockerfile" "$work/bundle.Dockerfile" >>"$work/diff" 2>&1 || status=1
    if ((status)); then
      echo "verify-bundle: bundle/ or bundle.Dockerfile is not what config/ generates (committed: -, generated: +):" >&2
      head -n 200 "$work/diff" >&2
      lines="$(wc -l <"$work/diff")"
      ((lines <= 200)) || echo "... ($lines lines in all)" >&2
      echo "verify-bundle: run \`make bundle\` and commit bundle/ and bundle.Dockerfile" >&2
    fi
    "$TOOL" validate --dockerfile "$REPO/bundle.Dockerfile" "$REPO/bundle" || status=1
    exit "$status"
    ;;
  *)
    echo "usage: $0 generate|verify [--repo DIR]" >&2
    exit 2
    ;;
esac
