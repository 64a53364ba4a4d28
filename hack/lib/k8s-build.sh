# shellcheck shell=bash
# hack/lib/k8s-build.sh (sourced by hack/control-plane.sh and hack/kubectl.sh): builds one
# command of k8s.io/kubernetes from Go modules, static, stamped with its version.
#
# k8s_build VERSION CMD OUT: `k8s.io/kubernetes/cmd/CMD` at VERSION (v1.X.Y) into OUT, in a
# throwaway module under the current directory. k8s.io/kubernetes points its staging modules at
# ./staging; each is mapped to its published v0.X.Y tag.
k8s_build() {
  local version=$1 cmd=$2 out=$3 modfile staging_version minor vpkg=k8s.io/component-base/version
  (
    export GOFLAGS=-mod=mod CGO_ENABLED=0
    go mod init "lca-rs.local/$cmd" >/dev/null 2>&1
    modfile="$(go mod download -json "k8s.io/kubernetes@${version}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    staging_version="v0.${version#v1.}"
    {
      echo "require k8s.io/kubernetes ${version}"
      grep -E '=> \./staging/src/' "$modfile" | awk -v v="$staging_version" '{print "replace " $1 " => " $1 " " v}'
    } >> go.mod
    printf '//go:build tools\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/%s"\n' "$cmd" > tools.go
    go mod tidy >/dev/null 2>&1 || true
    minor="${version#v1.}"; minor="${minor%%.*}"
    # -buildvcs=false and -trimpath: the binary depends on the version only, not on the temp dir.
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X $vpkg.gitVersion=${version} -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=${minor} -X $vpkg.gitTreeState=clean" \
      -o "$out" "k8s.io/kubernetes/cmd/$cmd"
  )
}
