// hack/olm/render.go: what lca-olm generate reads: config/ rendered with the kustomize library,
// the samples under config/samples and the workspace version in Cargo.toml.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// renderedObject is one object of config/ and the kustomization that first rendered it, so
// that an error can name where to look.
type renderedObject struct {
	obj    *unstructured.Unstructured
	source string
}

// samplesDir feeds alm-examples only: the samples are examples for the console, not objects
// OLM would install.
const samplesDir = "samples"

// renderConfig renders config/default and then every other kustomization directory directly
// under config/ (except samples), keeping each object once. config/default is what
// `kubectl apply -k` installs without OLM; a sibling it does not include (config/prometheus:
// its ServiceMonitor needs the monitoring CRDs a plain cluster lacks) still belongs in the
// bundle, because OLM installs onto OpenShift, which has them. Reading the directory rather
// than a list means a new kustomization under config/ reaches the bundle by itself.
func renderConfig(repo string) ([]renderedObject, []string, error) {
	configDir := filepath.Join(repo, "config")
	if !hasKustomization(filepath.Join(configDir, "default")) {
		return nil, nil, fmt.Errorf("%s has no kustomization", filepath.Join(configDir, "default"))
	}
	entries, err := os.ReadDir(configDir)
	if err != nil {
		return nil, nil, err
	}
	dirs := []string{"default"}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "default" && e.Name() != samplesDir && hasKustomization(filepath.Join(configDir, e.Name())) {
			dirs = append(dirs, e.Name())
		}
	}

	var all []renderedObject
	seen := map[string]int{}
	var sources []string
	for _, d := range dirs {
		source := "config/" + d
		objs, err := kustomize(filepath.Join(configDir, d))
		if err != nil {
			return nil, nil, fmt.Errorf("rendering %s: %w", source, err)
		}
		added := false
		for _, o := range objs {
			id := objectID(o)
			if i, ok := seen[id]; ok {
				// The same object reached through two kustomizations must be the same object;
				// otherwise which one the bundle carries would depend on the order read.
				if !equality.Semantic.DeepEqual(all[i].obj.Object, o.Object) {
					return nil, nil, fmt.Errorf("%s renders %s differently from %s", source, id, all[i].source)
				}
				continue
			}
			seen[id] = len(all)
			all = append(all, renderedObject{obj: o, source: source})
			added = true
		}
		if added {
			sources = append(sources, source)
		}
	}
	return all, sources, nil
}

func hasKustomization(dir string) bool {
	for _, n := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}

func kustomize(dir string) ([]*unstructured.Unstructured, error) {
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, r := range resMap.Resources() {
		// Through JSON, so that numbers are int64/float64 as everywhere else in apimachinery.
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

func objectID(o *unstructured.Unstructured) string {
	gvk := o.GroupVersionKind()
	id := gvk.Kind + " " + o.GetName()
	if gvk.Group != "" {
		id = gvk.Kind + "." + gvk.Group + " " + o.GetName()
	}
	if ns := o.GetNamespace(); ns != "" {
		id += " in " + ns
	}
	return id
}

// readSamples returns config/samples' objects: rendered when it has a kustomization, otherwise
// every YAML file in name order.
func readSamples(repo string) ([]*unstructured.Unstructured, error) {
	dir := filepath.Join(repo, "config", samplesDir)
	if hasKustomization(dir) {
		return kustomize(dir)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		objs, err := decodeYAMLFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

func decodeYAMLFile(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := k8syaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		out = append(out, u)
	}
}

// workspacePackage returns the keys of Cargo.toml's [workspace.package] table that are plain
// strings (version, repository, ...): all the CSV needs, without a TOML dependency.
func workspacePackage(repo string) (map[string]string, error) {
	f, err := os.Open(filepath.Join(repo, "Cargo.toml"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	keyValue := regexp.MustCompile(`^\s*([A-Za-z0-9_-]+)\s*=\s*"([^"]*)"\s*(#.*)?$`)
	out := map[string]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			section = strings.Trim(line, "[] ")
			continue
		}
		if section != "workspace.package" {
			continue
		}
		if m := keyValue.FindStringSubmatch(line); m != nil {
			out[m[1]] = m[2]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if out["version"] == "" {
		return nil, fmt.Errorf("%s: no version in [workspace.package]", filepath.Join(repo, "Cargo.toml"))
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
