// hack/olm/main.go: lca-olm, the OLM bundle tool behind `make bundle` and `make verify-bundle`
// (built by hack/olm/build.sh, driven by hack/olm/bundle.sh).
//
//	lca-olm generate [--repo DIR] [--out DIR] [--dockerfile FILE] [--image REF] [--version V]
//	lca-olm validate [--dockerfile FILE] BUNDLE_DIR
//
// generate renders config/ with the kustomize library (pinned in go.mod, so the output does
// not depend on whichever kubectl a machine has) and writes bundle/ and bundle.Dockerfile;
// validate runs operator-registry's format and content checks and operator-framework/api's
// validators, the ones `operator-sdk bundle validate` runs.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "generate":
		err = runGenerate(os.Args[2:])
	case "validate":
		err = runValidate(os.Args[2:])
	case "-h", "--help", "help":
		usage(os.Stdout)
		return
	default:
		usage(os.Stderr)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "lca-olm %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  lca-olm generate [--repo DIR] [--out DIR] [--dockerfile FILE] [--image REF] [--version V]
      regenerate the OLM bundle (DIR/manifests, DIR/metadata) and its Dockerfile from config/
  lca-olm validate [--dockerfile FILE] BUNDLE_DIR
      validate a bundle directory; exit 1 on any error (warnings are printed only)
`)
}

func runGenerate(args []string) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	repo := fs.String("repo", ".", "repository root: config/ and Cargo.toml are read from it")
	out := fs.String("out", "", "bundle directory to write (default REPO/bundle)")
	dockerfile := fs.String("dockerfile", "", "bundle Dockerfile to write (default REPO/bundle.Dockerfile)")
	image := fs.String("image", "", "operator image (default: the one config/manager's Deployment names)")
	version := fs.String("version", "", "CSV version (default: [workspace.package] version of REPO/Cargo.toml)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *out == "" {
		*out = filepath.Join(*repo, "bundle")
	}
	if *dockerfile == "" {
		*dockerfile = filepath.Join(*repo, "bundle.Dockerfile")
	}
	b, err := generate(generateOptions{repo: *repo, image: *image, version: *version})
	if err != nil {
		return err
	}
	if err := b.write(*out, *dockerfile); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "lca-olm generate: %s (%d manifests from %s) and %s\n",
		*out, len(b.manifests), b.describeSources(), *dockerfile)
	return nil
}

func runValidate(args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	dockerfile := fs.String("dockerfile", "", "also check that this bundle Dockerfile's LABELs match metadata/annotations.yaml")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("one bundle directory expected, got %q", fs.Args())
	}
	return validate(fs.Arg(0), *dockerfile, os.Stdout)
}
