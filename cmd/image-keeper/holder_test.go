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

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"
)

// holder-manifest renders the list image-keeper reads, and refuses what an image volume cannot
// hold, naming the entry, the value and the fix; nothing is written on an error.
func TestHolderManifest(t *testing.T) {
	config := filepath.Join(t.TempDir(), "keeper.yaml")
	if err := os.WriteFile(config, []byte("apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages:\n  - registry.example/app:1\n  - registry.example/agent@sha256:"+strings.Repeat("b", 64)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := holderManifestMain([]string{"--config", config, "--holder-image", "registry.example/image-keeper:v1", "--priority-class-name", "image-cache"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict(stdout.Bytes(), &ds); err != nil {
		t.Fatalf("not a DaemonSet: %v\n%s", err, stdout.String())
	}
	if v := ds.Spec.Template.Spec.Volumes; len(v) != 2 || v[0].Image.Reference != "registry.example/agent@sha256:"+strings.Repeat("b", 64) || v[1].Image.Reference != "registry.example/app:1" {
		t.Errorf("volumes %+v; want the two images, sorted", v)
	}
	if ds.Spec.Template.Spec.PriorityClassName != "image-cache" {
		t.Errorf("priority class %q", ds.Spec.Template.Spec.PriorityClassName)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--image", "registry.example/app:1"}, "--holder-image: required"},
		{[]string{"--image", "registry.example/*", "--holder-image", "h:1"}, `--image[0] "registry.example/*": a pattern with '*' cannot be pulled`},
		{[]string{"--image", "registry.example/app", "--holder-image", "h:1"}, "a repository without a tag or digest cannot be pulled; write registry.example/app:<tag>"},
		{[]string{"--image", "registry.example/app:1", "--holder-image", "h:1", "--kind", "Deployment"}, `--kind "Deployment": want DaemonSet or Pod`},
		{[]string{"--image", "registry.example/app:1", "--holder-image", "h:1", "--kind", "Pod", "--image-pull-secret", "regcred"}, "a static pod cannot name image pull secrets"},
	} {
		stdout.Reset()
		stderr.Reset()
		if code := holderManifestMain(tc.args, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
			t.Errorf("holder-manifest %q: exit %d, stdout %q, stderr %q; want exit 1 and %q", tc.args, code, stdout.String(), stderr.String(), tc.want)
		}
	}
	if _, err := parseFlags([]string{"--image", "nginx:1", "--holder-static-pod-dir", "/etc/kubernetes/manifests"}, false); err == nil || !strings.Contains(err.Error(), "--holder-static-pod-dir and --holder-image go together") {
		t.Errorf("--holder-static-pod-dir alone: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--holder-daemonset-namespace", "Kube_System"}, `--holder-daemonset-namespace "Kube_System": not a namespace name`},
		{[]string{"--holder-daemonset-namespace", "kube-system", "--holder-static-pod-dir", "/etc/kubernetes/manifests", "--holder-image", "h:1"}, "choose one"},
		{[]string{"--holder-daemonset-namespace", "kube-system", "--once"}, "does nothing with --once"},
	} {
		if _, err := parseFlags(append([]string{"--image", "nginx:1"}, tc.args...), false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v; want %q", tc.args, err, tc.want)
		}
	}
	cfg, err := parseFlags([]string{"--image", "nginx:1", "--holder-daemonset-namespace", "kube-system"}, false)
	if err != nil || !cfg.sources.Holder {
		t.Errorf("--holder-daemonset-namespace kube-system: %v; want holder mode", err)
	}
}

// docs/image-keeper.md's holder-manifest command renders a DaemonSet with its priority class.
func TestHolderManifestDocExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "image-keeper.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "<!-- holder-manifest -->\n```sh\n")
	if !ok {
		t.Fatal("docs/image-keeper.md has no sh block after <!-- holder-manifest -->")
	}
	block, _, _ = strings.Cut(block, "```")
	words := strings.Fields(strings.ReplaceAll(block, "\\\n", " "))
	if len(words) < 4 || words[0] != "image-keeper" || words[1] != "holder-manifest" || words[len(words)-2] != ">" {
		t.Fatalf("the doc's command is not `image-keeper holder-manifest ... > file`: %q", words)
	}
	args := words[2 : len(words)-2]
	config := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(config, []byte("apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages:\n  - registry.example/app:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	replaced := false
	for i, w := range args {
		if w == "/etc/image-keeper/config.yaml" {
			args[i], replaced = config, true
		}
	}
	if !replaced {
		t.Fatalf("the doc's command reads no /etc/image-keeper/config.yaml: %q", args)
	}
	var stdout, stderr bytes.Buffer
	if code := holderManifestMain(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict(stdout.Bytes(), &ds); err != nil {
		t.Fatal(err)
	}
	if ds.Kind != "DaemonSet" || ds.Spec.Template.Spec.PriorityClassName != "image-cache" || ds.Spec.Template.Spec.Containers[0].Image != "registry.example.com/image-keeper:v0.1.0" {
		t.Errorf("rendered %s with priority %q and image %q", ds.Kind, ds.Spec.Template.Spec.PriorityClassName, ds.Spec.Template.Spec.Containers[0].Image)
	}
}
