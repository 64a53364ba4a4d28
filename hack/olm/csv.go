// hack/olm/csv.go: the ClusterServiceVersion of the bundle: its metadata and annotations,
// owned CRDs with descriptors, install strategy with permissions, related images.
package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/blang/semver/v4"
	"github.com/operator-framework/api/pkg/lib/version"
	"github.com/operator-framework/api/pkg/operators/v1alpha1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

type csvInput struct {
	version     semver.Version
	image       string
	configImage string
	repository  string
	namespace   *unstructured.Unstructured
	operatorNS  string
	deployments []renderedObject
	perms       *permissions
	crds        []*unstructured.Unstructured
	samples     []*unstructured.Unstructured
	monitored   bool
}

func buildCSV(in csvInput) (map[string]interface{}, error) {
	v := in.version.String()

	owned, err := ownedCRDs(in.crds)
	if err != nil {
		return nil, err
	}

	examples := make([]map[string]interface{}, 0, len(in.samples))
	for _, s := range in.samples {
		examples = append(examples, s.Object)
	}
	almExamples, err := json.MarshalIndent(examples, "", "  ")
	if err != nil {
		return nil, err
	}

	annotations := map[string]string{
		"alm-examples":   string(almExamples),
		"capabilities":   "Basic Install",
		"categories":     "OpenShift Optional",
		"containerImage": in.image,
		"description":    "Image-based upgrades of single-node OpenShift clusters (lca-rs, a Rust reimplementation of the Lifecycle Agent).",
		// Infrastructure features (spec §10, as upstream): it pulls through the cluster's
		// mirrors, honours the cluster-wide proxy, and runs on FIPS clusters. Not a CNF, CNI or
		// CSI plugin, and no cloud short-lived token auth.
		"features.operators.openshift.io/disconnected":     "true",
		"features.operators.openshift.io/fips-compliant":   "true",
		"features.operators.openshift.io/proxy-aware":      "true",
		"features.operators.openshift.io/cnf":              "false",
		"features.operators.openshift.io/cni":              "false",
		"features.operators.openshift.io/csi":              "false",
		"features.operators.openshift.io/token-auth-aws":   "false",
		"features.operators.openshift.io/token-auth-azure": "false",
		"features.operators.openshift.io/token-auth-gcp":   "false",
		// The same three for consoles older than the features.* annotations.
		"operators.openshift.io/infrastructure-features": `["disconnected", "fips", "proxy-aware"]`,
		// The image carries /usr/bin/gather (must-gather/): `oc adm must-gather` finds it here.
		"operators.openshift.io/must-gather-image": in.image,
		"olm.skipRange": skipRange(v),
		"operatorframework.io/suggested-namespace": in.operatorNS,
	}
	if in.repository != "" {
		annotations["repository"] = in.repository
	}
	if in.namespace != nil {
		// The console creates the namespace from this when the user accepts the suggestion:
		// with config/'s labels (privileged pod security: the pod is privileged with hostPID)
		// and the workload-management annotation.
		ns := map[string]interface{}{
			"apiVersion": "v1",
			"kind":       "Namespace",
			"metadata":   pick(in.namespace.Object["metadata"], "name", "labels", "annotations"),
		}
		tmpl, err := json.MarshalIndent(ns, "", "  ")
		if err != nil {
			return nil, err
		}
		annotations["operatorframework.io/suggested-namespace-template"] = string(tmpl)
	}
	if in.monitored {
		// The console then labels the namespace for the cluster monitoring stack, which is
		// what the bundle's ServiceMonitor is for.
		annotations["operatorframework.io/cluster-monitoring"] = "true"
	}

	var deploymentSpecs []v1alpha1.StrategyDeploymentSpec
	for _, d := range in.deployments {
		deploymentSpecs = append(deploymentSpecs, v1alpha1.StrategyDeploymentSpec{Name: d.obj.GetName(), Label: d.obj.GetLabels()})
	}

	icon := []v1alpha1.Icon{{Data: base64.StdEncoding.EncodeToString(iconSVG), MediaType: "image/svg+xml"}}
	links := []v1alpha1.AppLink{{Name: "Upstream Lifecycle Agent", URL: "https://github.com/openshift-kni/lifecycle-agent"}}
	provider := v1alpha1.AppLink{Name: "lca-rs"}
	if in.repository != "" {
		links = append([]v1alpha1.AppLink{{Name: "lca-rs", URL: in.repository}}, links...)
		provider.URL = in.repository
	}

	csv := v1alpha1.ClusterServiceVersion{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: v1alpha1.ClusterServiceVersionKind},
		ObjectMeta: metav1.ObjectMeta{
			Name:        packageName + ".v" + v,
			Annotations: annotations,
			Labels: map[string]string{
				// The image is built for the build machine's architecture: amd64.
				"operatorframework.io/arch.amd64": "supported",
				"operatorframework.io/os.linux":   "supported",
			},
		},
		Spec: v1alpha1.ClusterServiceVersionSpec{
			DisplayName:    "Lifecycle Agent (lca-rs)",
			Description:    description(in.operatorNS),
			Version:        version.OperatorVersion{Version: in.version},
			MinKubeVersion: minKubeVersion,
			Maturity:       "alpha",
			Keywords:       []string{"upgrade", "image-based upgrade", "single-node openshift", "sno", "seed image", "lifecycle agent"},
			Provider:       provider,
			Links:          links,
			Icon:           icon,
			// As upstream: the operator watches cluster-scoped singletons, so one namespace
			// (its own) or all; it cannot be confined to other namespaces.
			InstallModes: []v1alpha1.InstallMode{
				{Type: v1alpha1.InstallModeTypeOwnNamespace, Supported: true},
				{Type: v1alpha1.InstallModeTypeSingleNamespace, Supported: false},
				{Type: v1alpha1.InstallModeTypeMultiNamespace, Supported: false},
				{Type: v1alpha1.InstallModeTypeAllNamespaces, Supported: true},
			},
			CustomResourceDefinitions: v1alpha1.CustomResourceDefinitions{Owned: owned},
			InstallStrategy: v1alpha1.NamedInstallStrategy{
				StrategyName: v1alpha1.InstallStrategyNameDeployment,
				StrategySpec: v1alpha1.StrategyDetailsDeployment{
					DeploymentSpecs:    deploymentSpecs,
					ClusterPermissions: strategyPermissions(in.perms.cluster),
					Permissions:        strategyPermissions(in.perms.namespaced),
				},
			},
			RelatedImages: relatedImages(in.deployments, in.configImage, in.image),
		},
	}

	data, err := json.Marshal(csv)
	if err != nil {
		return nil, err
	}
	var out map[string]interface{}
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, err
	}
	// Zero values the typed CSV always writes and OLM reads as absent.
	delete(out, "status")
	delete(out["metadata"].(map[string]interface{}), "creationTimestamp")
	spec := out["spec"].(map[string]interface{})
	for _, k := range []string{"apiservicedefinitions", "cleanup"} {
		if m, ok := spec[k].(map[string]interface{}); ok && (len(m) == 0 || k == "cleanup" && m["enabled"] == false) {
			delete(spec, k)
		}
	}
	// Each Deployment's spec as config/ writes it (with the image override), not a typed
	// round trip that would add empty fields config/ does not have.
	deps := spec["install"].(map[string]interface{})["spec"].(map[string]interface{})["deployments"].([]interface{})
	for i, d := range in.deployments {
		raw, err := jsonCopy(d.obj.Object["spec"])
		if err != nil {
			return nil, err
		}
		deps[i].(map[string]interface{})["spec"] = replaceString(raw, in.configImage, in.image)
	}
	return out, nil
}

func description(ns string) string {
	return `lca-rs is an open-source Rust reimplementation of OpenShift's Lifecycle Agent. It upgrades a
single-node OpenShift cluster by installing a seed image (an OCI image made from a seed cluster at
the target version) as a new ostree stateroot, pivoting into it with one reboot, and rolling back
when anything fails.

It serves the Lifecycle Agent's lca.openshift.io/v1 API unchanged:

* **ImageBasedUpgrade** ` + "`upgrade`" + `: Prep, Upgrade, Rollback and back to Idle, with the status
  conditions hub tooling such as TALM reads.
* **SeedGenerator** ` + "`seedimage`" + `: makes a seed image from this cluster and pushes it to a registry.

Install it in the ` + "`" + ns + "`" + ` namespace. Applications are carried across the
upgrade by the OADP Operator, installed separately. The operator's pod is privileged, with the
node's root filesystem mounted, as the Lifecycle Agent's is.
`
}

func ownedCRDs(crds []*unstructured.Unstructured) ([]v1alpha1.CRDDescription, error) {
	var owned []v1alpha1.CRDDescription
	for _, crd := range crds {
		kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
		text, ok := ownedAPIText[kind]
		if !ok {
			return nil, fmt.Errorf("CRD %s: no display name and description for kind %s: add them to ownedAPIText in hack/olm/generate.go", crd.GetName(), kind)
		}
		versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		for _, rawVersion := range versions {
			ver, _ := rawVersion.(map[string]interface{})
			if served, _ := ver["served"].(bool); !served {
				continue
			}
			name, _ := ver["name"].(string)
			schema, _, _ := unstructured.NestedMap(ver, "schema", "openAPIV3Schema")
			owned = append(owned, v1alpha1.CRDDescription{
				Name:              crd.GetName(),
				Version:           name,
				Kind:              kind,
				DisplayName:       text.displayName,
				Description:       text.description,
				SpecDescriptors:   specDescriptors(schema),
				StatusDescriptors: statusDescriptors(schema),
			})
		}
	}
	sort.Slice(owned, func(i, j int) bool {
		if owned[i].Name != owned[j].Name {
			return owned[i].Name < owned[j].Name
		}
		return owned[i].Version < owned[j].Version
	})
	return owned, nil
}

// specDescriptors describes the spec's top-level fields for the console's form view, from the
// schema's own descriptions.
func specDescriptors(schema map[string]interface{}) []v1alpha1.SpecDescriptor {
	props, _, _ := unstructured.NestedMap(schema, "properties", "spec", "properties")
	var out []v1alpha1.SpecDescriptor
	for _, name := range sortedKeys(props) {
		p, _ := props[name].(map[string]interface{})
		d := v1alpha1.SpecDescriptor{Path: name, DisplayName: displayName(name)}
		d.Description, _ = p["description"].(string)
		switch p["type"] {
		case "string":
			d.XDescriptors = []string{"urn:alm:descriptor:com.tectonic.ui:text"}
		case "integer", "number":
			d.XDescriptors = []string{"urn:alm:descriptor:com.tectonic.ui:number"}
		case "boolean":
			d.XDescriptors = []string{"urn:alm:descriptor:com.tectonic.ui:booleanSwitch"}
		}
		out = append(out, d)
	}
	return out
}

// statusDescriptors shows the conditions (what an administrator watches) when the status has them.
func statusDescriptors(schema map[string]interface{}) []v1alpha1.StatusDescriptor {
	if _, ok, _ := unstructured.NestedMap(schema, "properties", "status", "properties", "conditions"); !ok {
		return nil
	}
	return []v1alpha1.StatusDescriptor{{
		Path:         "conditions",
		DisplayName:  "Conditions",
		XDescriptors: []string{"urn:alm:descriptor:io.kubernetes.conditions"},
	}}
}

// displayName: seedImageRef -> "Seed Image Ref", oadpContent -> "OADP Content".
func displayName(field string) string {
	var words []string
	start := 0
	for i, r := range field {
		if i > 0 && unicode.IsUpper(r) {
			words = append(words, field[start:i])
			start = i
		}
	}
	words = append(words, field[start:])
	for i, w := range words {
		if strings.EqualFold(w, "oadp") {
			words[i] = "OADP"
			continue
		}
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

func strategyPermissions(bySA map[string][]rbacv1.PolicyRule) []v1alpha1.StrategyDeploymentPermissions {
	var out []v1alpha1.StrategyDeploymentPermissions
	for _, sa := range sortedKeys(bySA) {
		out = append(out, v1alpha1.StrategyDeploymentPermissions{ServiceAccountName: sa, Rules: bySA[sa]})
	}
	return out
}

// relatedImages lists every image the Deployments pull or hand to their Jobs (container images,
// RELATED_IMAGE_* and the precache image), so that a mirror of the catalog mirrors them too.
func relatedImages(deployments []renderedObject, configImage, image string) []v1alpha1.RelatedImage {
	byImage := map[string]string{}
	add := func(name, img string) {
		if img == configImage {
			img = image
		}
		if _, ok := byImage[img]; !ok && img != "" {
			byImage[img] = name
		}
	}
	for _, d := range deployments {
		for _, field := range []string{"initContainers", "containers"} {
			containers, _, _ := unstructured.NestedSlice(d.obj.Object, "spec", "template", "spec", field)
			for _, c := range containers {
				m, _ := c.(map[string]interface{})
				img, _ := m["image"].(string)
				add(imageName(img), img)
				env, _ := m["env"].([]interface{})
				for _, e := range env {
					em, _ := e.(map[string]interface{})
					name, _ := em["name"].(string)
					value, _ := em["value"].(string)
					if strings.HasPrefix(name, "RELATED_IMAGE_") || name == "PRECACHE_WORKLOAD_IMG" {
						add(imageName(value), value)
					}
				}
			}
		}
	}
	var out []v1alpha1.RelatedImage
	for _, img := range sortedKeys(byImage) {
		out = append(out, v1alpha1.RelatedImage{Name: byImage[img], Image: img})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// imageName: quay.io/lca-rs/lifecycle-agent-operator:latest -> lifecycle-agent-operator.
func imageName(ref string) string {
	ref = strings.SplitN(ref, "@", 2)[0]
	last := ref[strings.LastIndex(ref, "/")+1:]
	return strings.SplitN(last, ":", 2)[0]
}

func pick(v interface{}, keys ...string) map[string]interface{} {
	m, _ := v.(map[string]interface{})
	out := map[string]interface{}{}
	for _, k := range keys {
		if x, ok := m[k]; ok {
			out[k] = x
		}
	}
	return out
}

func jsonCopy(v interface{}) (interface{}, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out interface{}
	return out, json.Unmarshal(data, &out)
}

// replaceString replaces every string equal to from (the container image, the precache image
// variable) with to.
func replaceString(v interface{}, from, to string) interface{} {
	switch t := v.(type) {
	case string:
		if t == from {
			return to
		}
	case map[string]interface{}:
		for k, x := range t {
			t[k] = replaceString(x, from, to)
		}
	case []interface{}:
		for i, x := range t {
			t[i] = replaceString(x, from, to)
		}
	}
	return v
}
