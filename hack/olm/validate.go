// hack/olm/validate.go: lca-olm validate, the checks `operator-sdk bundle validate` makes,
// from the same libraries: operator-registry's format and content checks, then
// operator-framework/api's validators (the default ones and the optional ones that apply to a
// bundle of this kind), then the few consistency rules of this repository's bundle.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/api/pkg/manifests"
	"github.com/operator-framework/api/pkg/validation"
	interfaces "github.com/operator-framework/api/pkg/validation/interfaces"
	registrybundle "github.com/operator-framework/operator-registry/pkg/lib/bundle"
	"github.com/sirupsen/logrus"
	"sigs.k8s.io/yaml"
)

// The Kubernetes version the removed-API check judges the manifests against: the one lca-rs
// is built (k8s-openapi's v1_34) and tested (hack/control-plane.sh) with.
const k8sVersion = "1.34"

// The api module's validators, by the names `operator-sdk bundle validate --list-optional`
// shows. Left out: the deprecated community and OperatorHub (v1) validators (the first is for
// the community-operators catalog, the second superseded by operatorhubv2 and the standard
// categories/capabilities), the multi-architecture one (it pulls the images, and this machine
// reaches no container registry), the OperatorGroup and package-manifest ones (a bundle holds
// neither).
var apiValidators = []struct {
	name string
	v    interfaces.Validator
}{
	{"csv (default)", validation.ClusterServiceVersionValidator},
	{"crd (default)", validation.CustomResourceDefinitionValidator},
	{"bundle (default)", validation.BundleValidator},
	{"bundle-objects", validation.ObjectValidator},
	{"good-practices", validation.GoodPracticesValidator},
	{"alpha-deprecated-apis", validation.AlphaDeprecatedAPIsValidator},
	{"operatorhubv2", validation.OperatorHubV2Validator},
	{"standardcapabilities", validation.StandardCapabilitiesValidator},
	{"standardcategories", validation.StandardCategoriesValidator},
}

type findings struct {
	errors, warnings []string
	seen             map[string]bool
}

// add keeps each message once: operator-registry's content check runs the api's CSV, CRD and
// bundle validators too.
func (f *findings) add(warning bool, source, msg string) {
	if f.seen[msg] {
		return
	}
	f.seen[msg] = true
	line := "[" + source + "] " + msg
	if warning {
		f.warnings = append(f.warnings, line)
	} else {
		f.errors = append(f.errors, line)
	}
}

func (f *findings) addErr(source string, err error) {
	var ve registrybundle.ValidationError
	if errors.As(err, &ve) {
		for _, e := range ve.Errors {
			f.add(false, source, e.Error())
		}
		return
	}
	f.add(false, source, err.Error())
}

func validate(dir, dockerfile string, w io.Writer) error {
	f := &findings{seen: map[string]bool{}}

	logger := logrus.New()
	logger.SetOutput(os.Stderr)
	logger.SetLevel(logrus.WarnLevel)
	// No image registry: the bundle is a directory here; nothing is pulled.
	reg := registrybundle.NewImageValidator(nil, logrus.NewEntry(logger))
	if err := reg.ValidateBundleFormat(dir); err != nil {
		f.addErr("registry format", err)
	}
	if err := reg.ValidateBundleContent(filepath.Join(dir, "manifests")); err != nil {
		f.addErr("registry content", err)
	}

	b, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		f.addErr("load", err)
	}
	if b != nil {
		objs := append(b.ObjectsToValidate(), map[string]string{"k8s-version": k8sVersion})
		for _, av := range apiValidators {
			for _, res := range av.v.Validate(objs...) {
				for _, e := range res.Errors {
					f.add(false, av.name, e.Error())
				}
				for _, e := range res.Warnings {
					f.add(true, av.name, e.Error())
				}
			}
		}
		for _, e := range repoRules(b, dir, dockerfile) {
			f.add(false, "lca-rs", e)
		}
	}

	names := make([]string, 0, len(apiValidators))
	for _, av := range apiValidators {
		names = append(names, av.name)
	}
	fmt.Fprintf(w, "validated %s: operator-registry format and content checks; api validators %s; k8s-version=%s\n",
		dir, strings.Join(names, ", "), k8sVersion)
	for _, m := range f.warnings {
		fmt.Fprintf(w, "WARNING %s\n", m)
	}
	for _, m := range f.errors {
		fmt.Fprintf(w, "ERROR %s\n", m)
	}
	fmt.Fprintf(w, "%d errors, %d warnings\n", len(f.errors), len(f.warnings))
	if len(f.errors) > 0 {
		return fmt.Errorf("%s is not a valid bundle (%d errors)", dir, len(f.errors))
	}
	return nil
}

// repoRules: what the libraries do not check but this bundle relies on.
func repoRules(b *manifests.Bundle, dir, dockerfile string) []string {
	var errs []string
	if b.CSV == nil {
		return errs
	}
	csv := b.CSV
	if b.Package != packageName {
		errs = append(errs, fmt.Sprintf("package is %q, not %q: upstream's Subscriptions would not find it", b.Package, packageName))
	}
	v := csv.Spec.Version.String()
	if want := packageName + ".v" + v; csv.GetName() != want {
		errs = append(errs, fmt.Sprintf("CSV name %q is not %q", csv.GetName(), want))
	}
	// OLM parses olm.skipRange with the same semver library; a range it cannot parse makes the
	// bundle unreachable by upgrades, which no library check reports.
	if sr, ok := csv.GetAnnotations()["olm.skipRange"]; !ok {
		errs = append(errs, "no olm.skipRange annotation")
	} else if r, err := semver.ParseRange(sr); err != nil {
		errs = append(errs, fmt.Sprintf("olm.skipRange %q: %v", sr, err))
	} else if r(csv.Spec.Version.Version) {
		errs = append(errs, fmt.Sprintf("olm.skipRange %q includes the CSV's own version %s", sr, v))
	}
	if dockerfile != "" {
		errs = append(errs, dockerfileRules(dir, dockerfile)...)
	}
	return errs
}

// dockerfileRules: the image's LABELs are what a catalog reads, annotations.yaml what the
// validators read; they must say the same.
func dockerfileRules(dir, dockerfile string) []string {
	var errs []string
	data, err := os.ReadFile(filepath.Join(dir, "metadata", "annotations.yaml"))
	if err != nil {
		return []string{err.Error()}
	}
	var ann registrybundle.AnnotationMetadata
	if err := yaml.Unmarshal(data, &ann); err != nil {
		return []string{fmt.Sprintf("annotations.yaml: %v", err)}
	}
	fh, err := os.Open(dockerfile)
	if err != nil {
		return []string{err.Error()}
	}
	defer fh.Close()
	labels := map[string]string{}
	from := ""
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && fields[0] == "FROM" {
			from = fields[1]
		}
		if len(fields) == 2 && fields[0] == "LABEL" {
			if k, v, ok := strings.Cut(fields[1], "="); ok {
				labels[k] = v
			}
		}
	}
	if from != "scratch" {
		errs = append(errs, fmt.Sprintf("%s: FROM %q, not scratch", dockerfile, from))
	}
	for _, k := range sortedKeys(ann.Annotations) {
		if labels[k] != ann.Annotations[k] {
			errs = append(errs, fmt.Sprintf("%s: LABEL %s=%q, annotations.yaml says %q", dockerfile, k, labels[k], ann.Annotations[k]))
		}
	}
	for _, k := range sortedKeys(labels) {
		if _, ok := ann.Annotations[k]; !ok {
			errs = append(errs, fmt.Sprintf("%s: LABEL %s is not in annotations.yaml", dockerfile, k))
		}
	}
	return errs
}
