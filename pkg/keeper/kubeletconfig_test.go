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
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
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
	budget := filepath.Join(dir, "budget")
	writeFile(t, filepath.Join(budget, "10.conf"), kubeletHeader+"imageGCExcludeBudgetPercent: 1000\n")
	negative := filepath.Join(dir, "negative.yaml")
	writeFile(t, negative, kubeletHeader+"imageGCExcludeBudgetPercent: -5\n")
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
		{"budget over 100 in a drop-in", Sources{KubeletConfigFile: base, KubeletConfigDir: budget}, "imageGCExcludeBudgetPercent 1000 must be between 1 and 100"},
		{"negative budget", Sources{KubeletConfigFile: negative}, "imageGCExcludeBudgetPercent -5 must be between 1 and 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.src)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// At first boot the kubelet's config may not exist yet: image-keeper keeps what the other
// sources ask for, is not ready, and reads the file once it appears (a reload).
func TestKubeletConfigMissingAtStart(t *testing.T) {
	dir := t.TempDir()
	kubelet := filepath.Join(dir, "config.yaml")
	w, err := Load(Sources{KubeletConfigFile: kubelet})
	if err != nil {
		t.Fatalf("a missing kubelet config at start is fatal: %v", err)
	}
	if len(w.Images) != 0 || w.KubeletConfigMissing == "" {
		t.Fatalf("wanted %+v; want no images and the reason", w)
	}
	server := newImageServer(t)
	k := New(testOptions(), w, server.connect, NewMetrics())
	_ = k.Reconcile(t.Context())
	if ready, reason := k.Status().Ready(); ready || !strings.Contains(reason, "waiting for the kubelet config") {
		t.Errorf("ready=%v %q; want not ready, waiting for the kubelet config", ready, reason)
	}
	writeFile(t, kubelet, kubeletHeader+"featureGates:\n  ImageGCExclusion: true\nimageGCExclude: [example.com/app:1]\n")
	w, err = Load(Sources{KubeletConfigFile: kubelet})
	if err != nil {
		t.Fatal(err)
	}
	k.SetWanted(w)
	if err := k.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ready, reason := k.Status().Ready(); !ready {
		t.Errorf("after the kubelet config appeared: not ready: %s", reason)
	}
	// A missing drop-in directory is still an error, as on the kubelet.
	if _, err := Load(Sources{KubeletConfigFile: kubelet, KubeletConfigDir: filepath.Join(dir, "missing")}); err == nil {
		t.Error("a missing --kubelet-config-dir was accepted")
	}
}

func TestWantedImagesCapped(t *testing.T) {
	refs := make([]string, MaxWantedImages+1)
	for i := range refs {
		refs[i] = "example.com/app-" + strconv.Itoa(i) + ":1"
	}
	if _, err := Load(Sources{Images: refs}); err == nil || !strings.Contains(err.Error(), "at most 50000") {
		t.Fatalf("Load of %d images = %v; want the cap", len(refs), err)
	}
	if _, err := Load(Sources{Images: refs[:MaxWantedImages]}); err != nil {
		t.Fatalf("Load of exactly the cap: %v", err)
	}
}

// Warnings name each wanted image the kubelet's allowlist does not protect, say when the gate is
// off, and list entries image-keeper cannot pull; a selector may protect any image, so with one
// no image is called unprotected.
func TestWarnings(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		config string
		want   []string
	}{
		{"unprotected image", "featureGates: {ImageGCExclusion: true}\nimageGCExclude: [registry.k8s.io/pause:3.10, \"ghcr.io/acme/*\"]\n",
			[]string{"cannot be pulled|[entries [ghcr.io/acme/*]]", "not protected by the kubelet's allowlist|[image docker.io/library/nginx:1]"}},
		{"gate off", "imageGCExclude: [registry.k8s.io/pause:3.10]\n",
			[]string{"feature gate is off"}},
		{"selector", "featureGates: {ImageGCExclusion: true}\nimageGCExcludeSelectors: [cache.example.com/keep=true]\n",
			[]string{"cannot be pulled|[entries [selector cache.example.com/keep=true]]"}},
		{"all protected", "featureGates: {ImageGCExclusion: true}\nimageGCExclude: [docker.io/library/nginx:1]\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			writeFile(t, path, kubeletHeader+tc.config)
			w, err := Load(Sources{Images: []string{"nginx:1"}, KubeletConfigFile: path})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, warning := range w.Warnings() {
				got = append(got, fmt.Sprintf("%s %v", warning.Message, warning.KeysAndValues))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q; want %d", got, len(tc.want))
			}
			// In holder mode the holder keeps what the allowlist does not: only the entries
			// that cannot be pulled are worth a warning.
			held, err := Load(Sources{Images: []string{"nginx:1"}, KubeletConfigFile: path, Holder: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, warning := range held.Warnings() {
				if !strings.Contains(warning.Message, "cannot be pulled") {
					t.Errorf("holder mode warns %q", warning.Message)
				}
			}
			for i := range got {
				for _, part := range strings.Split(tc.want[i], "|") {
					if !strings.Contains(got[i], part) {
						t.Errorf("warning %d = %q; want it to contain %q", i, got[i], part)
					}
				}
			}
		})
	}
	if w, err := Load(Sources{Images: []string{"nginx:1"}}); err != nil || len(w.Warnings()) != 0 {
		t.Errorf("without a kubelet config: %v, %v", w.Warnings(), err)
	}
}
