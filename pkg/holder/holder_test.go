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

package holder

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		refs []string
		want string // "" for valid
	}{
		{[]string{"docker.io/library/nginx:1.27", "ghcr.io/acme/agent@sha256:" + strings.Repeat("a", 64)}, ""},
		{[]string{"nginx:1.27"}, ""},
		{nil, "no images to hold"},
		{[]string{"ghcr.io/acme/*"}, `image 0 "ghcr.io/acme/*": an image volume needs one pullable image (a tag or a digest), not a pattern`},
		{[]string{"nginx:1", "ghcr.io/acme/agent"}, `image 1 "ghcr.io/acme/agent": an image volume needs a tag or a digest: a bare repository would pull :latest`},
		{[]string{"nginx:1", "nginx:1"}, `image 1 "nginx:1": duplicate of image 0`},
		{[]string{"Nginx:1"}, `image 0 "Nginx:1"`},
	} {
		err := Validate(tc.refs)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Validate(%q) = %v; want nil", tc.refs, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Validate(%q) = %v; want an error containing %q", tc.refs, err, tc.want)
		}
	}
	many := make([]string, MaxImages+1)
	for i := range many {
		many[i] = fmt.Sprintf("registry.example/app:%d", i)
	}
	if err := Validate(many); err == nil || !strings.Contains(err.Error(), "at most 500") {
		t.Errorf("Validate(%d images) = %v; want the cap", len(many), err)
	}
}

// The holder mounts each image read-only, runs `hold` with the least privilege, tolerates every
// taint, and a DaemonSet rolls make-before-break.
func TestManifests(t *testing.T) {
	refs := []string{"docker.io/library/nginx:1.27", "registry.example/app:1"}
	opts := Options{Image: "registry.example/image-keeper:v1", PriorityClassName: "low", ImagePullSecrets: []string{"regcred"}}
	ds, err := DaemonSet(refs, opts)
	if err != nil {
		t.Fatal(err)
	}
	spec := ds.Spec.Template.Spec
	c := spec.Containers[0]
	if c.Image != opts.Image || strings.Join(c.Args, " ") != "hold" {
		t.Errorf("container %s %v; want %s hold", c.Image, c.Args, opts.Image)
	}
	for i, ref := range refs {
		v, m := spec.Volumes[i], c.VolumeMounts[i]
		if v.Image == nil || v.Image.Reference != ref || v.Image.PullPolicy != corev1.PullIfNotPresent || m.Name != v.Name || !m.ReadOnly || m.MountPath != fmt.Sprintf("/held/%d", i) {
			t.Errorf("image %d: volume %+v mount %+v", i, v, m)
		}
	}
	sc := c.SecurityContext
	if !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || len(sc.Capabilities.Drop) != 1 || *spec.AutomountServiceAccountToken {
		t.Errorf("the holder runs with more privilege than it needs: %+v, token %v", sc, *spec.AutomountServiceAccountToken)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0].Operator != corev1.TolerationOpExists {
		t.Errorf("tolerations %+v; want every taint tolerated", spec.Tolerations)
	}
	if spec.PriorityClassName != "low" || spec.ImagePullSecrets[0].Name != "regcred" {
		t.Errorf("priority %q, secrets %+v", spec.PriorityClassName, spec.ImagePullSecrets)
	}
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ru.MaxSurge.IntValue() != 1 || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update %+v; want maxSurge 1, maxUnavailable 0", ru)
	}
	if _, err := StaticPod(refs, opts); err == nil || !strings.Contains(err.Error(), "cannot name image pull secrets") {
		t.Errorf("a static pod with pull secrets: %v", err)
	}
	if _, err := DaemonSet([]string{"ghcr.io/acme/*"}, opts); err == nil {
		t.Error("a DaemonSet holding a pattern was rendered")
	}
	// The list decides the name, not its order: image-keeper's list is sorted.
	if Name([]string{"b:1", "a:1"}) != Name([]string{"a:1", "b:1"}) || Name([]string{"a:1"}) == Name([]string{"a:2"}) {
		t.Error("Name does not follow the set of images")
	}
}

// fakeContainers is a runtime's container list: what the kubelet runs for the manifests in a
// directory, when it runs them.
type fakeContainers struct{ running []string } // pod names (<static pod>-<node>)

func (f *fakeContainers) ListContainers(context.Context) ([]*runtimeapi.Container, error) {
	var out []*runtimeapi.Container
	for _, pod := range f.running {
		out = append(out, &runtimeapi.Container{
			State:  runtimeapi.ContainerState_CONTAINER_RUNNING,
			Labels: map[string]string{"io.kubernetes.container.name": ContainerName, "io.kubernetes.pod.name": pod},
		})
	}
	// Containers of other pods, and an exited holder, do not count.
	out = append(out,
		&runtimeapi.Container{State: runtimeapi.ContainerState_CONTAINER_RUNNING, Labels: map[string]string{"io.kubernetes.container.name": "app", "io.kubernetes.pod.name": "web-node"}},
		&runtimeapi.Container{State: runtimeapi.ContainerState_CONTAINER_EXITED, Labels: map[string]string{"io.kubernetes.container.name": ContainerName, "io.kubernetes.pod.name": NamePrefix + "-0000000000000000-node"}},
	)
	return out, nil
}

func manifests(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// Make-before-break: the old manifest goes only once the new pod's container runs; a manifest
// the syncer did not write is never touched.
func TestStaticPodSyncer(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "etcd.yaml"), []byte("kind: Pod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runtime := &fakeContainers{}
	s := &StaticPodSyncer{Dir: dir, Options: Options{Image: "registry.example/image-keeper:v1"}, Runtime: runtime}
	ctx := context.Background()
	v1 := []string{"registry.example/a:1", "registry.example/b:1"}
	v2 := []string{"registry.example/a:1", "registry.example/c:1"}

	st := s.Sync(ctx, v1)
	if st.Holding != "" || !strings.Contains(st.Message, "waiting for the kubelet") {
		t.Errorf("before the kubelet runs it: %+v", st)
	}
	data, err := os.ReadFile(filepath.Join(dir, Name(v1)+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(data, &pod); err != nil || len(pod.Spec.Volumes) != 2 {
		t.Fatalf("the manifest is not the holder pod: %v\n%s", err, data)
	}
	runtime.running = []string{Name(v1) + "-node-1"}
	if st := s.Sync(ctx, v1); st.Holding != st.Wanted || st.Message != "" || st.Held["registry.example/b:1"] != Name(v1) || len(st.Held) != 2 {
		t.Errorf("once it runs: %+v", st)
	}

	st = s.Sync(ctx, v2)
	if got, want := manifests(t, dir), []string{Name(v2) + ".yaml", "etcd.yaml", Name(v1) + ".yaml"}; strings.Join(got, " ") != strings.Join(sortStrings(want), " ") {
		t.Errorf("while the new holder starts, manifests %v; want %v (both holders)", got, sortStrings(want))
	}
	if st.Holding == st.Wanted || st.Holding == "" || st.Held["registry.example/b:1"] == "" || st.Held["registry.example/c:1"] != "" {
		t.Errorf("while the new holder starts: %+v; want the old list held", st)
	}
	runtime.running = append(runtime.running, Name(v2)+"-node-1")
	if st := s.Sync(ctx, v2); st.Holding != st.Wanted || st.Held["registry.example/c:1"] != Name(v2) {
		t.Errorf("once the new holder runs: %+v", st)
	}
	if got, want := manifests(t, dir), sortStrings([]string{Name(v2) + ".yaml", "etcd.yaml"}); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("after the switch, manifests %v; want %v", got, want)
	}

	if st := s.Sync(ctx, []string{"registry.example/*"}); !strings.Contains(st.Message, "not a pattern") {
		t.Errorf("a pattern: %+v", st)
	}
	if got := manifests(t, dir); len(got) != 2 {
		t.Errorf("a refused list changed the manifests: %v", got)
	}
}

func sortStrings(s []string) []string {
	sort.Strings(s)
	return s
}
