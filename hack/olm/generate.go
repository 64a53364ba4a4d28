// hack/olm/generate.go: turns the rendered config/ into an OLM registry+v1 bundle: the CSV
// (install strategy, permissions, owned CRDs, metadata), the CRDs, every other object OLM
// accepts in a bundle, metadata/annotations.yaml and the bundle's Dockerfile.
package main

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/blang/semver/v4"
	registrybundle "github.com/operator-framework/operator-registry/pkg/lib/bundle"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

const (
	// Upstream's package and channel: a Subscription written for the Lifecycle Agent
	// (user doc §15.2.2: name lifecycle-agent, channel stable) finds this bundle unchanged.
	packageName = "lifecycle-agent"
	channel     = "stable"

	// OpenShift 4.14, the first release with image-based upgrade (the bottom of skipRange), is
	// Kubernetes 1.27. The CRDs' transition rules (oldSelf) need CRD validation rules, on by
	// default since 1.25, so 1.27 is the binding bound.
	minKubeVersion = "1.27.0"

	// The upstream releases this one may replace: 4.14.0, the first with image-based upgrade,
	// through 5.0.0, the release whose contract (spec §10) lca-rs reproduces.
	upstreamFirst = "4.14.0"
	upstreamLast  = "5.0.0"

	csvFile = packageName + ".clusterserviceversion.yaml"
)

//go:embed icon.svg
var iconSVG []byte

// The CSV's text for each owned API: the CRDs' own descriptions are kube's derive boilerplate
// ("Auto-generated derived type for ..."), not something to show a cluster administrator.
var ownedAPIText = map[string]struct{ displayName, description string }{
	"ImageBasedUpgrade": {
		displayName: "Image-based Upgrade",
		description: "The upgrade of this single-node cluster to a seed image's version: one object named upgrade, " +
			"whose spec.stage goes Idle, Prep, Upgrade (or Rollback) and back to Idle.",
	},
	"SeedGenerator": {
		displayName: "Seed Generator",
		description: "Makes a seed image from this single-node cluster and pushes it to spec.seedImage: " +
			"one object named seedimage.",
	},
}

type generateOptions struct {
	repo    string
	image   string
	version string
}

type manifestFile struct {
	name string
	data []byte
}

type generatedBundle struct {
	manifests   []manifestFile
	annotations map[string]string
	sources     []string
}

func (b *generatedBundle) describeSources() string { return strings.Join(b.sources, ", ") }

// skipRange: every earlier lca-rs release (versioned 0.x, below any upstream release), and the
// upstream Lifecycle Agent releases whose CRDs and conditions lca-rs serves unchanged, so that
// pointing an existing lifecycle-agent Subscription at a catalog with this bundle replaces
// upstream's operator in place, as upstream's own '>=4.14.0 <X' lets any earlier release jump
// to the newest. The CSV's own version is outside both parts.
func skipRange(v string) string {
	return fmt.Sprintf(">=0.0.0 <%s || >=%s <=%s", v, upstreamFirst, upstreamLast)
}

func generate(opts generateOptions) (*generatedBundle, error) {
	pkg, err := workspacePackage(opts.repo)
	if err != nil {
		return nil, err
	}
	ver := opts.version
	if ver == "" {
		ver = pkg["version"]
	}
	csvVersion, err := semver.Parse(ver)
	if err != nil {
		return nil, fmt.Errorf("version %q: %w", ver, err)
	}

	objs, sources, err := renderConfig(opts.repo)
	if err != nil {
		return nil, err
	}
	samples, err := readSamples(opts.repo)
	if err != nil {
		return nil, err
	}

	// The Deployments are the install strategy; their service accounts are the ones OLM makes
	// and grants the permissions of the roles bound to them.
	var deployments []renderedObject
	for _, r := range objs {
		if r.obj.GetKind() == "Deployment" {
			deployments = append(deployments, r)
		}
	}
	if len(deployments) == 0 {
		return nil, fmt.Errorf("config/ renders no Deployment: nothing for the CSV to install")
	}
	operatorNS := deployments[0].obj.GetNamespace()
	serviceAccounts := map[string]bool{}
	for _, d := range deployments {
		if d.obj.GetNamespace() != operatorNS {
			return nil, fmt.Errorf("%s (from %s) is not in %s: OLM installs every Deployment in one namespace", objectID(d.obj), d.source, operatorNS)
		}
		sa, _, _ := unstructured.NestedString(d.obj.Object, "spec", "template", "spec", "serviceAccountName")
		if sa == "" {
			sa = "default"
		}
		serviceAccounts[sa] = true
	}

	configImage, err := operatorImage(deployments[0].obj)
	if err != nil {
		return nil, err
	}
	image := opts.image
	if image == "" {
		image = configImage
	}

	perms, err := collectPermissions(objs, serviceAccounts, operatorNS)
	if err != nil {
		return nil, err
	}

	var (
		crds      []*unstructured.Unstructured
		namespace *unstructured.Unstructured
		files     []manifestFile
		names     = map[string]string{}
		monitored bool
	)
	addFile := func(name string, r renderedObject, o *unstructured.Unstructured) error {
		if prev, ok := names[name]; ok {
			return fmt.Errorf("%s from %s and %s would both be bundle/manifests/%s", objectID(o), r.source, prev, name)
		}
		names[name] = objectID(o) + " from " + r.source
		data, err := marshalManifest(o.Object, "Generated by `make bundle` (hack/olm) from "+r.source+": do not edit.")
		if err != nil {
			return err
		}
		files = append(files, manifestFile{name: name, data: data})
		return nil
	}
	for _, r := range objs {
		o := r.obj
		kind := o.GetKind()
		switch {
		case kind == "Deployment":
			continue
		case kind == "Namespace":
			// OLM installs into a namespace the user makes (or the console makes from the
			// suggested-namespace template below) and makes no other.
			if o.GetName() != operatorNS {
				return nil, fmt.Errorf("%s renders %s: a bundle cannot create namespaces other than the operator's (%s)", r.source, objectID(o), operatorNS)
			}
			namespace = o
			continue
		case kind == "ServiceAccount" && serviceAccounts[o.GetName()] && o.GetNamespace() == operatorNS:
			continue
		case perms.absorbed[objectID(o)]:
			continue
		case kind == "CustomResourceDefinition":
			crds = append(crds, o)
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			plural, _, _ := unstructured.NestedString(o.Object, "spec", "names", "plural")
			if err := addFile(group+"_"+plural+".yaml", r, o); err != nil {
				return nil, err
			}
			continue
		}
		supported, namespaced := registrybundle.IsSupported(kind)
		if !supported {
			return nil, fmt.Errorf("%s renders %s: OLM does not accept kind %s in a registry+v1 bundle", r.source, objectID(o), kind)
		}
		o = o.DeepCopy()
		if namespaced {
			if ns := o.GetNamespace(); ns != "" && ns != operatorNS {
				return nil, fmt.Errorf("%s renders %s: a bundle's namespaced objects go to the operator's namespace (%s) only", r.source, objectID(o), operatorNS)
			}
			// OLM puts them in the namespace the operator is installed in.
			o.SetNamespace("")
		}
		if kind == "ServiceMonitor" || kind == "PrometheusRule" || kind == "PodMonitor" {
			monitored = true
		}
		gvk := o.GroupVersionKind()
		name := o.GetName() + "_"
		if gvk.Group != "" {
			name += gvk.Group + "_"
		}
		name += gvk.Version + "_" + strings.ToLower(kind) + ".yaml"
		if err := addFile(name, r, o); err != nil {
			return nil, err
		}
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("config/ renders no CustomResourceDefinition")
	}

	csv, err := buildCSV(csvInput{
		version:     csvVersion,
		image:       image,
		configImage: configImage,
		repository:  pkg["repository"],
		namespace:   namespace,
		operatorNS:  operatorNS,
		deployments: deployments,
		perms:       perms,
		crds:        crds,
		samples:     samples,
		monitored:   monitored,
	})
	if err != nil {
		return nil, err
	}
	csvData, err := marshalManifest(csv, "Generated by `make bundle` (hack/olm) from config/ and config/samples: do not edit.")
	if err != nil {
		return nil, err
	}
	files = append(files, manifestFile{name: csvFile, data: csvData})
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })

	return &generatedBundle{
		manifests: files,
		annotations: map[string]string{
			registrybundle.MediatypeLabel:      registrybundle.RegistryV1Type,
			registrybundle.ManifestsLabel:      registrybundle.ManifestsDir,
			registrybundle.MetadataLabel:       registrybundle.MetadataDir,
			registrybundle.PackageLabel:        packageName,
			registrybundle.ChannelsLabel:       channel,
			registrybundle.ChannelDefaultLabel: channel,
		},
		sources: sources,
	}, nil
}

// operatorImage is the image of the Deployment's manager container (the first container when
// none is called manager).
func operatorImage(d *unstructured.Unstructured) (string, error) {
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	var image string
	for i, c := range containers {
		m, _ := c.(map[string]interface{})
		img, _ := m["image"].(string)
		if i == 0 || m["name"] == "manager" {
			image = img
		}
		if m["name"] == "manager" {
			break
		}
	}
	if image == "" {
		return "", fmt.Errorf("%s has no container image", objectID(d))
	}
	return image, nil
}

type permissions struct {
	cluster    map[string][]rbacv1.PolicyRule // service account -> rules, cluster-wide
	namespaced map[string][]rbacv1.PolicyRule // service account -> rules in the operator's namespace
	// The bindings to the operator's service accounts and the roles only they use: OLM makes
	// them from the CSV, so the bundle does not carry them.
	absorbed map[string]bool
}

// collectPermissions turns the roles bound to the operator's service accounts into the CSV's
// clusterPermissions (ClusterRoleBindings) and permissions (RoleBindings, to a Role or to a
// ClusterRole). Bindings of other subjects (the metrics reader's, for Prometheus) stay objects
// of their own, and so do the roles they bind.
func collectPermissions(objs []renderedObject, serviceAccounts map[string]bool, operatorNS string) (*permissions, error) {
	roles := map[string][]rbacv1.PolicyRule{}
	roleIDs := map[string]string{}
	for _, r := range objs {
		switch r.obj.GetKind() {
		case "ClusterRole", "Role":
			var role struct {
				Rules []rbacv1.PolicyRule `json:"rules"`
			}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(r.obj.Object, &role); err != nil {
				return nil, fmt.Errorf("%s (from %s): %w", objectID(r.obj), r.source, err)
			}
			key := roleKey(r.obj.GetKind(), r.obj.GetNamespace(), r.obj.GetName())
			roles[key] = role.Rules
			roleIDs[key] = objectID(r.obj)
		}
	}

	p := &permissions{cluster: map[string][]rbacv1.PolicyRule{}, namespaced: map[string][]rbacv1.PolicyRule{}, absorbed: map[string]bool{}}
	keptRoles := map[string]bool{}
	absorbedRoles := map[string]bool{}
	for _, r := range objs {
		kind := r.obj.GetKind()
		if kind != "ClusterRoleBinding" && kind != "RoleBinding" {
			continue
		}
		var binding rbacv1.RoleBinding // a ClusterRoleBinding has the same fields
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(r.obj.Object, &binding); err != nil {
			return nil, fmt.Errorf("%s (from %s): %w", objectID(r.obj), r.source, err)
		}
		ns := ""
		if binding.RoleRef.Kind == "Role" {
			ns = r.obj.GetNamespace()
		}
		key := roleKey(binding.RoleRef.Kind, ns, binding.RoleRef.Name)
		var operatorSAs, others []string
		for _, s := range binding.Subjects {
			if s.Kind == "ServiceAccount" && serviceAccounts[s.Name] && (s.Namespace == "" || s.Namespace == operatorNS) {
				operatorSAs = append(operatorSAs, s.Name)
			} else {
				others = append(others, s.Kind+" "+s.Name)
			}
		}
		if len(operatorSAs) == 0 {
			keptRoles[key] = true
			continue
		}
		if len(others) > 0 {
			// OLM would grant the operator's part and the bundle could not carry the rest.
			return nil, fmt.Errorf("%s (from %s) binds the operator's service account together with %s: split it into two bindings",
				objectID(r.obj), r.source, strings.Join(others, ", "))
		}
		rules, ok := roles[key]
		if !ok {
			return nil, fmt.Errorf("%s (from %s) binds %s %q, which config/ does not define", objectID(r.obj), r.source, binding.RoleRef.Kind, binding.RoleRef.Name)
		}
		target := p.namespaced
		if kind == "ClusterRoleBinding" {
			target = p.cluster
		}
		for _, sa := range operatorSAs {
			target[sa] = append(target[sa], rules...)
		}
		p.absorbed[objectID(r.obj)] = true
		absorbedRoles[key] = true
	}
	for key := range absorbedRoles {
		if !keptRoles[key] {
			p.absorbed[roleIDs[key]] = true
		}
	}
	return p, nil
}

func roleKey(kind, namespace, name string) string { return kind + "/" + namespace + "/" + name }
func marshalManifest(v interface{}, header string) ([]byte, error) {
	data, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte("# "+header+"\n"), data...), nil
}

// write replaces out/manifests and out/metadata (so that a file config/ no longer produces goes)
// and writes the Dockerfile, whose COPY lines name out relative to the Dockerfile's directory,
// the build context.
func (b *generatedBundle) write(out, dockerfile string) error {
	manifestsDir := filepath.Join(out, "manifests")
	metadataDir := filepath.Join(out, "metadata")
	for _, d := range []string{manifestsDir, metadataDir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, f := range b.manifests {
		if err := os.WriteFile(filepath.Join(manifestsDir, f.name), f.data, 0o644); err != nil {
			return err
		}
	}

	var ann strings.Builder
	ann.WriteString("# Generated by `make bundle` (hack/olm): the bundle's OLM metadata, the same as bundle.Dockerfile's LABELs.\nannotations:\n")
	for _, k := range sortedKeys(b.annotations) {
		fmt.Fprintf(&ann, "  %s: %s\n", k, b.annotations[k])
	}
	if err := os.WriteFile(filepath.Join(metadataDir, "annotations.yaml"), []byte(ann.String()), 0o644); err != nil {
		return err
	}

	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	absDockerfile, err := filepath.Abs(dockerfile)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(absDockerfile), absOut)
	if err != nil {
		return err
	}
	rel = filepath.ToSlash(rel)
	var df strings.Builder
	df.WriteString("# bundle.Dockerfile: the lca-rs OLM bundle image, generated by `make bundle` (hack/olm) with\n")
	df.WriteString("# bundle/; do not edit. Build it from the repository root with any OCI builder, e.g.\n")
	df.WriteString("#   podman build -f bundle.Dockerfile -t <registry>/lifecycle-agent-bundle:<version> .\n")
	df.WriteString("FROM scratch\n\n")
	// The same order as operator-registry's own generator.
	for _, k := range []string{registrybundle.MediatypeLabel, registrybundle.ManifestsLabel, registrybundle.MetadataLabel,
		registrybundle.PackageLabel, registrybundle.ChannelsLabel, registrybundle.ChannelDefaultLabel} {
		fmt.Fprintf(&df, "LABEL %s=%s\n", k, b.annotations[k])
	}
	fmt.Fprintf(&df, "\nCOPY %s/manifests /manifests/\nCOPY %s/metadata /metadata/\n", rel, rel)
	return os.WriteFile(dockerfile, []byte(df.String()), 0o644)
}
