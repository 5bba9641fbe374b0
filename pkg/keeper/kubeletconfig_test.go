/*
Copyright 2026 The Kubernetes Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package keeper

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const kubeletHeader = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"

// The drop-ins are merged as the kubelet merges them: *.conf only, lexical order, subdirectories
// included, a list replacing the one before it, fields of the base kept unless overridden.
func TestKubeletConfigDropIns(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "config.yaml")
	dropIns := filepath.Join(dir, "config.d")
	writeFile(t, base, kubeletHeader+"featureGates:\n  ImageGCExclusion: true\nimageGCExclude: [base/app:1]\nimageGCExcludeSelectors: [keep]\n")
	writeFile(t, filepath.Join(dropIns, "20-second.conf"), kubeletHeader+"imageGCExclude: [second/app:1, second/other:1]\n")
	writeFile(t, filepath.Join(dropIns, "10-first.conf"), kubeletHeader+"imageGCExclude: [first/app:1]\n")
	writeFile(t, filepath.Join(dropIns, "30-nested", "01.conf"), kubeletHeader+"imageGCExcludeSelectors: [tier=edge]\n")
	writeFile(t, filepath.Join(dropIns, "99-ignored.yaml"), "not even YAML: [")
	kc, err := readKubeletConfig(base, dropIns)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"second/app:1", "second/other:1"}; !reflect.DeepEqual(kc.ImageGCExclude, want) {
		t.Errorf("imageGCExclude = %q; want %q (the last drop-in's list replaces the others)", kc.ImageGCExclude, want)
	}
	if want := []string{"tier=edge"}; !reflect.DeepEqual(kc.ImageGCExcludeSelectors, want) {
		t.Errorf("imageGCExcludeSelectors = %q; want %q (a drop-in in a subdirectory is applied last)", kc.ImageGCExcludeSelectors, want)
	}
	if !kc.FeatureGates["ImageGCExclusion"] {
		t.Error("the base file's feature gate was lost")
	}

	w, err := Load(Sources{KubeletConfigFile: base, KubeletConfigDir: dropIns})
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, img := range w.Images {
		refs = append(refs, img.Reference)
	}
	if want := []string{"docker.io/second/app:1", "docker.io/second/other:1"}; !reflect.DeepEqual(refs, want) {
		t.Errorf("wanted images %q; want %q", refs, want)
	}
}

func TestKubeletConfigErrors(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "config.yaml")
	writeFile(t, base, kubeletHeader+"imageGCExclude: [app:1]\n")
	wrongKind := filepath.Join(dir, "wrong")
	writeFile(t, filepath.Join(wrongKind, "10.conf"), "apiVersion: v1\nkind: ConfigMap\n")
	noVersion := filepath.Join(dir, "noversion.yaml")
	writeFile(t, noVersion, "kind: KubeletConfiguration\n")
	for _, tc := range []struct {
		name string
		src  Sources
		want string
	}{
		{"drop-in of another kind", Sources{KubeletConfigFile: base, KubeletConfigDir: wrongKind}, `10.conf: apiVersion "v1", kind "ConfigMap": want apiVersion: kubelet.config.k8s.io/v1beta1 and kind: KubeletConfiguration`},
		{"no apiVersion", Sources{KubeletConfigFile: noVersion}, `apiVersion "", kind "KubeletConfiguration"`},
		{"dir without file", Sources{Images: []string{"app:1"}, KubeletConfigDir: wrongKind}, "needs --kubelet-config"},
		{"missing dir", Sources{KubeletConfigFile: base, KubeletConfigDir: filepath.Join(dir, "missing")}, "no such file or directory"},
		{"a directory as the file", Sources{KubeletConfigFile: dir}, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
