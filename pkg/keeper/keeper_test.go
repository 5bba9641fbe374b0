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
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/dockerconfig"
)

func testOptions() Options {
	opts := DefaultOptions()
	opts.Interval = time.Hour // tests drive passes themselves
	opts.BackoffBase = 40 * time.Millisecond
	opts.BackoffMax = 320 * time.Millisecond
	opts.PullTimeout = 5 * time.Second
	opts.ListTimeout = 2 * time.Second
	return opts
}

func wantedImages(t *testing.T, refs ...string) *Wanted {
	t.Helper()
	w, err := Load(Sources{Images: refs})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func newTestKeeper(t *testing.T, server *imageServer, opts Options, refs ...string) *Keeper {
	t.Helper()
	return New(opts, wantedImages(t, refs...), server.connect, NewMetrics())
}

func TestReconcilePullsMissingAndLeavesPresent(t *testing.T) {
	ctx := context.Background()
	server := newImageServer(t)
	server.add("registry.k8s.io/pause:3.10")
	k := newTestKeeper(t, server, testOptions(), "registry.k8s.io/pause:3.10", "nginx:1.27", "localhost:5000/app@sha256:"+strings.Repeat("a", 64))

	if err := k.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if n := server.pullCount("registry.k8s.io/pause:3.10"); n != 0 {
		t.Errorf("present image pulled %d times", n)
	}
	if n := server.pullCount("docker.io/library/nginx:1.27"); n != 1 {
		t.Errorf("missing tag pulled %d times; want 1 (by its normalized reference)", n)
	}
	if n := server.pullCount("localhost:5000/app@sha256:" + strings.Repeat("a", 64)); n != 1 {
		t.Errorf("missing digest pulled %d times; want 1", n)
	}
	// A second pass finds everything present and pulls nothing.
	if err := k.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if n := server.pullCount("docker.io/library/nginx:1.27"); n != 1 {
		t.Errorf("after a second pass nginx was pulled %d times; want 1", n)
	}
	if ready, reason := k.Status().Ready(); !ready {
		t.Errorf("not ready after pulling everything: %s", reason)
	}
	if got := testutil.ToFloat64(k.metrics.pulls.WithLabelValues("success")); got != 2 {
		t.Errorf("image_keeper_pulls_total{result=success} = %v; want 2", got)
	}
	if got := testutil.ToFloat64(k.metrics.present); got != 3 {
		t.Errorf("image_keeper_present_images = %v; want 3", got)
	}
}

func TestRestoreAfterRemoval(t *testing.T) {
	ctx := context.Background()
	server := newImageServer(t)
	server.add("nginx:1.27")
	k := newTestKeeper(t, server, testOptions(), "nginx:1.27")
	if err := k.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	server.remove("nginx:1.27") // crictl rmi
	if err := k.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if n := server.pullCount("docker.io/library/nginx:1.27"); n != 1 {
		t.Errorf("removed image pulled %d times; want 1", n)
	}
	if s := k.Status(); !s.Images[0].Present || s.Images[0].LastPull.IsZero() {
		t.Errorf("status after restore: %+v", s.Images[0])
	}
}

func TestBackoffBounds(t *testing.T) {
	opts := testOptions()
	k := New(opts, wantedImages(t, "example.com/app:1"), nil, NewMetrics())
	for failures := 1; failures <= 8; failures++ {
		want := min(opts.BackoffBase<<(failures-1), opts.BackoffMax)
		lo, hi := want, time.Duration(0)
		for i := 0; i < 1000; i++ {
			d := k.backoff(failures)
			lo, hi = min(lo, d), max(hi, d)
		}
		// Exponential, capped, jittered over the upper half: [want/2, want], and spread out.
		if lo < want/2 || hi > want || hi-lo < want/4 {
			t.Errorf("failure %d: backoff in [%v, %v]; want within [%v, %v] and spread by jitter", failures, lo, hi, want/2, want)
		}
	}
}

func TestPullConcurrencyIsBounded(t *testing.T) {
	ctx := context.Background()
	server := newImageServer(t)
	server.pullDelay = 50 * time.Millisecond
	opts := testOptions()
	opts.PullConcurrency = 3
	var refs []string
	for i := 0; i < 10; i++ {
		refs = append(refs, "example.com/app:"+string(rune('a'+i)))
	}
	k := newTestKeeper(t, server, opts, refs...)
	start := time.Now()
	if err := k.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if server.maxInFlight != 3 {
		t.Errorf("at most %d pulls were in flight; want exactly 3", server.maxInFlight)
	}
	if ready, reason := k.Status().Ready(); !ready {
		t.Errorf("not ready: %s (pass took %v)", reason, elapsed)
	}
}

func TestRuntimeRestartRecovery(t *testing.T) {
	ctx := context.Background()
	server := newImageServer(t)
	k := newTestKeeper(t, server, testOptions(), "example.com/app:1")
	if err := k.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	server.stop()
	server.remove("example.com/app:1")
	if err := k.Reconcile(ctx); err == nil {
		t.Fatal("Reconcile succeeded with the runtime down")
	}
	s := k.Status()
	if s.RuntimeError == "" {
		t.Error("runtime error not reported in status")
	}
	if ready, _ := s.Ready(); ready {
		t.Error("ready while the runtime is down")
	}
	if d := k.NextDelay(); d > time.Second {
		t.Errorf("next try in %v with the runtime down; want the runtime backoff, not the interval", d)
	}
	server.start(t)
	deadline := time.Now().Add(10 * time.Second)
	for k.Reconcile(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("did not reconnect to the restarted runtime")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := k.Status(); s.RuntimeError != "" || !s.Images[0].Present {
		t.Errorf("after the runtime came back: %+v", s)
	}
}

func TestRuntimeDownAtStart(t *testing.T) {
	ctx := context.Background()
	server := newImageServer(t)
	server.stop()
	k := newTestKeeper(t, server, testOptions(), "example.com/app:1")
	if err := k.Reconcile(ctx); err == nil {
		t.Fatal("Reconcile succeeded with no runtime")
	}
	server.start(t)
	// gRPC reconnects by itself, within its 3 s backoff cap.
	deadline := time.Now().Add(10 * time.Second)
	for err := k.Reconcile(ctx); err != nil; err = k.Reconcile(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("did not connect once the runtime was up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A runtime that stays away costs failed calls, not connections: goroutines stay bounded over
// 100 failed passes (k8s.io/cri-client's builder left one redialling connection per attempt).
func TestRuntimeAbsentGoroutinesBounded(t *testing.T) {
	ctx := context.Background()
	server := newImageServer(t)
	server.stop()
	k := newTestKeeper(t, server, testOptions(), "example.com/app:1")
	_ = k.Reconcile(ctx) // the connection's own goroutines start here
	before := runtime.NumGoroutine()
	for i := 0; i < 100; i++ {
		if err := k.Reconcile(ctx); err == nil {
			t.Fatal("Reconcile succeeded with no runtime")
		}
	}
	if after := runtime.NumGoroutine(); after > before+5 {
		t.Errorf("goroutines grew from %d to %d over 100 failed passes", before, after)
	}
}

func TestCredentialsArePassedPerRegistry(t *testing.T) {
	ctx := context.Background()
	server := newImageServer(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, []byte(`{"auths":{"localhost:5000":{"auth":"dXNlcjpzM2NyM3Q="},"https://index.docker.io/v1/":{"username":"hub","password":"pw"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	creds, err := dockerconfig.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(creds.String(), "s3cr3t") || strings.Contains(creds.String(), "pw") {
		t.Errorf("Credentials.String() leaks a secret: %s", creds)
	}
	opts := testOptions()
	opts.Credentials = creds
	opts.PullConcurrency = 1
	k := newTestKeeper(t, server, opts, "localhost:5000/app:1", "nginx:1", "quay.io/x/y:1")
	if err := k.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	server.mu.Lock()
	for ref, a := range server.authByImage {
		if a != nil {
			// Sent as the kubelet sends it: no ServerAddress, which containerd would compare
			// with the registry host after url.Parse.
			if a.ServerAddress != "" {
				t.Errorf("%s: ServerAddress %q sent; want none", ref, a.ServerAddress)
			}
			got[ref] = a.Username + ":" + a.Password
		}
	}
	server.mu.Unlock()
	want := map[string]string{"localhost:5000/app:1": "user:s3cr3t", "docker.io/library/nginx:1": "hub:pw"}
	if len(got) != len(want) || got["localhost:5000/app:1"] != want["localhost:5000/app:1"] || got["docker.io/library/nginx:1"] != want["docker.io/library/nginx:1"] {
		t.Errorf("credentials sent = %v; want %v (and none for quay.io)", got, want)
	}
	// The images pulled with a login are flagged: without --kubelet-config the kubelet's
	// default policy is assumed, under which any pod may run them.
	if open := k.Status().OpenPrivate(); strings.Join(open, " ") != "docker.io/library/nginx:1 localhost:5000/app:1" {
		t.Errorf("OpenPrivate = %v; want the two images pulled with a login", open)
	}
	var table bytes.Buffer
	PrintStatus(&table, k.Status())
	if !strings.Contains(table.String(), "2 images were pulled with a registry login, not by the kubelet") {
		t.Errorf("the status table does not flag them:\n%s", table.String())
	}
}

// Which images pulled with a login any pod may run, under each
// imagePullCredentialsVerificationPolicy of the kubelet (KEP-2535).
func TestOpenPrivate(t *testing.T) {
	s := Status{Images: []ImageState{
		{Reference: "registry.example.com/team-a/app:1", Present: true, PulledWithLogin: true},
		{Reference: "registry.example.com/team-b/app@sha256:" + strings.Repeat("a", 64), Present: true, PulledWithLogin: true},
		{Reference: "docker.io/library/nginx:1", Present: true},                                  // anonymous
		{Reference: "registry.example.com/team-a/gone:1", Present: false, PulledWithLogin: true}, // removed since
	}}
	for policy, want := range map[string]string{
		"":                             "registry.example.com/team-a/app:1 registry.example.com/team-b/app@sha256:" + strings.Repeat("a", 64),
		"NeverVerify":                  "registry.example.com/team-a/app:1 registry.example.com/team-b/app@sha256:" + strings.Repeat("a", 64),
		"NeverVerifyPreloadedImages":   "registry.example.com/team-a/app:1 registry.example.com/team-b/app@sha256:" + strings.Repeat("a", 64),
		"NeverVerifyAllowlistedImages": "registry.example.com/team-a/app:1",
		"AlwaysVerify":                 "",
	} {
		s.PullCredentialsPolicy, s.PreloadedAllowlist = policy, []string{"registry.example.com/team-a/*", "registry.example.com/team-c"}
		if got := strings.Join(s.OpenPrivate(), " "); got != want {
			t.Errorf("policy %q: %q; want %q", policy, got, want)
		}
	}
}

func TestProtectionDecidedByKubeletAllowlist(t *testing.T) {
	ctx := context.Background()
	server := newImageServer(t)
	server.add("example.com/labelled:1")
	dir := t.TempDir()
	kubelet := filepath.Join(dir, "kubelet.yaml")
	writeFile(t, kubelet, `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
featureGates:
  ImageGCExclusion: true
imageGCExclude:
  - registry.k8s.io/pause:3.10
  - "ghcr.io/acme/*"
imageGCExcludeSelectors:
  - cache.example.com/keep=true
`)
	w, err := Load(Sources{Images: []string{"example.com/labelled:1", "example.com/other:1"}, KubeletConfigFile: kubelet})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Images) != 3 {
		t.Fatalf("wanted %v; want the two flags and the kubelet's pause tag", w.Images)
	}
	if strings.Join(w.NotPullable, ",") != "ghcr.io/acme/*,selector cache.example.com/keep=true" {
		t.Errorf("NotPullable = %q", w.NotPullable)
	}
	k := New(testOptions(), w, server.connect, NewMetrics())
	if err := k.Observe(ctx); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, img := range k.Status().Images {
		got[img.Reference] = img.Protected.String()
	}
	want := map[string]string{
		"example.com/labelled:1":     "yes: cache.example.com/keep=true", // present: labels read from the runtime
		"example.com/other:1":        "unknown: not present, and the allowlist has label selectors",
		"registry.k8s.io/pause:3.10": "yes: registry.k8s.io/pause:3.10",
	}
	for ref, p := range want {
		if got[ref] != p {
			t.Errorf("%s: protected = %q; want %q", ref, got[ref], p)
		}
	}

	// The same allowlist with the gate off protects nothing.
	writeFile(t, kubelet, `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
imageGCExclude: [registry.k8s.io/pause:3.10]
`)
	w, err = Load(Sources{KubeletConfigFile: kubelet})
	if err != nil {
		t.Fatal(err)
	}
	k = New(testOptions(), w, server.connect, NewMetrics())
	_ = k.Observe(ctx)
	if p := k.Status().Images[0].Protected; p.State != Unprotected || !strings.Contains(p.Reason, "ImageGCExclusion feature gate is off") {
		t.Errorf("gate off: protected = %q", p)
	}
}

// fakeHolder is a Holder that holds the images named in byRef (reference -> pod).
type fakeHolder struct {
	mu      sync.Mutex
	byRef   map[string]string
	pending string
}

func (h *fakeHolder) Mode() string { return "fake holder" }

func (h *fakeHolder) HeldBy(reference, _ string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byRef[reference]
}

func (h *fakeHolder) Pending() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending
}

// Holder mode (no kubelet allowlist): what protects a wanted image is the holder pod that mounts
// it, as the Holder says; the node is warm only once every present image is held.
func TestProtectionHeldByImageVolume(t *testing.T) {
	server := newImageServer(t)
	server.add("example.com/held:1")
	server.add("example.com/new:1")
	w, err := Load(Sources{Images: []string{"example.com/held:1", "example.com/new:1"}, Holder: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &fakeHolder{byRef: map[string]string{"example.com/held:1": "image-keeper-holder-0123456789abcdef"}, pending: "waiting for the kubelet"}
	opts := testOptions()
	opts.Holder = h
	k := New(opts, w, server.connect, NewMetrics())
	if err := k.Observe(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"example.com/held:1": "yes: image volume of image-keeper-holder-0123456789abcdef",
		"example.com/new:1":  "no: no running holder pod mounts it yet",
	}
	for _, img := range k.Status().Images {
		if got := img.Protected.String(); got != want[img.Reference] {
			t.Errorf("%s: protected = %q; want %q", img.Reference, got, want[img.Reference])
		}
	}
	// Present is not warm in holder mode: the unheld image and what the holder waits for are named.
	ready, reason := k.Status().Ready()
	if ready || reason != "1 of 2 wanted images present but not yet held by a running holder pod (fake holder): example.com/new:1; the holder: waiting for the kubelet" {
		t.Errorf("one image unheld: ready %v, %q", ready, reason)
	}
	h.mu.Lock()
	h.byRef["example.com/new:1"], h.pending = "image-keeper-holder-0123456789abcdef", ""
	h.mu.Unlock()
	if err := k.Observe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ready, reason := k.Status().Ready(); !ready || reason != "all 2 wanted images present and protected (holder: fake holder)" {
		t.Errorf("every image held: ready %v, %q", ready, reason)
	}

	// With the stock kubelet's config passed too (the shipped unit and DaemonSet pass one), the
	// holder still protects what its allowlist (none) does not.
	kubelet := filepath.Join(t.TempDir(), "kubelet.yaml")
	writeFile(t, kubelet, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n")
	w, err = Load(Sources{Images: []string{"example.com/held:1"}, KubeletConfigFile: kubelet})
	if err != nil {
		t.Fatal(err)
	}
	k = New(opts, w, server.connect, NewMetrics())
	if err := k.Observe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := k.Status().Images[0].Protected.String(); got != want["example.com/held:1"] {
		t.Errorf("with a kubelet config: protected = %q; want %q", got, want["example.com/held:1"])
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		file    string
		images  []string
		wantErr string
	}{
		{name: "unknown field", file: "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimagse: [nginx:1]\n", wantErr: `unknown field "imagse"`},
		{name: "wrong kind", file: "apiVersion: v1\nkind: ConfigMap\n", wantErr: "want apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1 and kind: ImageKeeperConfiguration"},
		// Strict as Kubernetes is strict: case-sensitive names, no duplicate keys, one document.
		{name: "field name in another case", file: "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nImages: [nginx:1]\n", wantErr: `unknown field "Images"`},
		{name: "duplicate key", file: "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [nginx:1]\nimages: [nginx:2]\n", wantErr: `"images"`},
		{name: "second document", file: "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [nginx:1]\n---\napiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [nginx:2]\n", wantErr: "2 YAML documents; want one"},
		{name: "second document after a commented separator", file: "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [nginx:1]\n--- # more\nimages: [nginx:2]\n", wantErr: "2 YAML documents; want one"},
		{name: "second document on its separator's line", file: "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [nginx:1]\n--- {images: [nginx:2]}\n", wantErr: "2 YAML documents; want one"},
		{name: "bad yaml", file: "apiVersion: [\n", wantErr: "line"},
		{name: "bad reference", file: "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [nginx:1, Nginx:2]\n", wantErr: `images[1] "Nginx:2": repository name must be lowercase`},
		{name: "bare repository", file: "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [nginx]\n", wantErr: `images[0] "nginx": a repository without a tag or digest cannot be pulled; write nginx:<tag>`},
		{name: "wildcard", file: "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [\"ghcr.io/acme/*\"]\n", wantErr: "a pattern with '*' cannot be pulled"},
		{name: "duplicate", file: "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [nginx:1, docker.io/library/nginx:1]\n", wantErr: `images[1] "docker.io/library/nginx:1": duplicate of`},
		{name: "duplicate flag", images: []string{"nginx:1", "nginx:1"}, wantErr: `--image[1] "nginx:1": duplicate of --image[0]`},
		{name: "nothing wanted", wantErr: "no images to keep"},
		{name: "missing file", file: "-", wantErr: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := Sources{Images: tc.images}
			if tc.file != "" {
				src.ConfigFile = filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
				if tc.file != "-" {
					writeFile(t, src.ConfigFile, tc.file)
				}
			}
			_, err := Load(src)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load error = %v; want it to contain %q", err, tc.wantErr)
			}
			if tc.file != "" && tc.file != "-" && !strings.Contains(err.Error(), src.ConfigFile) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// One document, however it is framed, is read whole: a leading separator, a comment-only
// document after it, an explicit end.
func TestLoadOneDocumentFramed(t *testing.T) {
	dir := t.TempDir()
	for i, file := range []string{
		"---\napiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [nginx:1, nginx:2]\n",
		"apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [nginx:1, nginx:2]\n--- # nothing more\n# just a comment\n",
		"apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [nginx:1, nginx:2]\n...\n",
	} {
		path := filepath.Join(dir, fmt.Sprintf("%d.yaml", i))
		writeFile(t, path, file)
		w, err := Load(Sources{ConfigFile: path})
		if err != nil || len(w.Images) != 2 {
			t.Errorf("%q: %v, %v; want both images", file, w, err)
		}
	}
}

func TestRunReloadKeepsLastGoodConfig(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	server := newImageServer(t)
	path := filepath.Join(t.TempDir(), "keeper.yaml")
	writeFile(t, path, "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [example.com/a:1]\n")
	src := Sources{ConfigFile: path}
	w, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	metrics := NewMetrics()
	k := New(testOptions(), w, server.connect, metrics)
	reload := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		k.Run(ctx, reload, func() (*Wanted, error) { return Load(src) })
		close(stopped)
	}()
	waitFor(t, "example.com/a:1 pulled", func() bool { return server.pullCount("example.com/a:1") == 1 })

	writeFile(t, path, "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [example.com/a:1, example.com/b:1]\n")
	reload <- struct{}{}
	waitFor(t, "example.com/b:1 pulled after reload", func() bool { return server.pullCount("example.com/b:1") == 1 })

	writeFile(t, path, "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [Bad]\n")
	reload <- struct{}{}
	waitFor(t, "config error reported", func() bool {
		return strings.Contains(k.Status().ConfigError, `"Bad": repository name must be lowercase`)
	})
	if s := k.Status(); len(s.Images) != 2 || !s.Images[0].Present || !s.Images[1].Present {
		t.Errorf("after a bad reload the previous images and their state must stay: %+v", s.Images)
	}
	// Stale, and saying so: not ready (/readyz, the node condition) and the metric at 1.
	if ready, reason := k.Status().Ready(); ready || !strings.Contains(reason, "the config does not load, the previous configuration is in force") {
		t.Errorf("ready %v (%s) with a broken config in force", ready, reason)
	}
	if v := testutil.ToFloat64(metrics.configStale); v != 1 {
		t.Errorf("image_keeper_config_stale = %v after a failed reload; want 1", v)
	}
	writeFile(t, path, "apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1\nkind: ImageKeeperConfiguration\nimages: [example.com/a:1, example.com/b:1]\n")
	reload <- struct{}{}
	waitFor(t, "ready once the config is fixed", func() bool { ready, _ := k.Status().Ready(); return ready })
	if v := testutil.ToFloat64(metrics.configStale); v != 0 {
		t.Errorf("image_keeper_config_stale = %v after a good reload; want 0", v)
	}

	start := time.Now()
	cancel()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not stop within 2s of cancellation")
	}
	t.Logf("stopped %v after cancellation", time.Since(start))
}

func TestShutdownCancelsInFlightPulls(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	server := newImageServer(t)
	server.pullDelay = time.Minute
	k := newTestKeeper(t, server, testOptions(), "example.com/slow:1")
	stopped := make(chan struct{})
	go func() {
		k.Run(ctx, nil, nil)
		close(stopped)
	}()
	waitFor(t, "pull in flight", func() bool { return server.pullCount("example.com/slow:1") == 1 })
	cancel()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		t.Fatal("in-flight pull not cancelled within 2s")
	}
	if s := k.Status().Images[0]; s.Failures != 0 {
		t.Errorf("a cancelled pull counted as a registry failure: %+v", s)
	}
}

// /status is served only where the caller asks (loopback), from an encoding at most a second
// old, with at most maxStatusAnswers answers in flight.
func TestStatusEndpointBounds(t *testing.T) {
	server := newImageServer(t)
	server.add("nginx:1.27")
	k := newTestKeeper(t, server, testOptions(), "nginx:1.27")
	get := func(h http.Handler) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
		return rec
	}
	if rec := get(k.Handler(false)); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "loopback only") {
		t.Errorf("/status on a non-loopback listener = %d %q; want 404 and where to find it", rec.Code, rec.Body.String())
	}

	now := time.Now()
	first, err := k.encodedStatus(now)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Reconcile(context.Background()); err != nil { // the status changes
		t.Fatal(err)
	}
	if again, _ := k.encodedStatus(now.Add(statusFresh / 2)); !bytes.Equal(again, first) {
		t.Error("an answer within statusFresh was encoded again")
	}
	later, _ := k.encodedStatus(now.Add(statusFresh))
	if bytes.Equal(later, first) || !bytes.Contains(later, []byte(`"present": true`)) {
		t.Errorf("after statusFresh the old answer is still served:\n%s", later)
	}

	h := k.Handler(true)
	for range maxStatusAnswers {
		k.statusSlots <- struct{}{} // answers in flight
	}
	if rec := get(h); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Errorf("/status with %d answers in flight = %d; want 503 with Retry-After", maxStatusAnswers, rec.Code)
	}
	<-k.statusSlots
	if rec := get(h); rec.Code != http.StatusOK {
		t.Errorf("/status with a free slot = %d %q", rec.Code, rec.Body.String())
	}
}

func TestHandlerAndStatusTable(t *testing.T) {
	ctx := context.Background()
	server := newImageServer(t)
	server.pullErr = map[string]bool{"example.com/missing:1": true}
	server.add("nginx:1.27")
	k := newTestKeeper(t, server, testOptions(), "nginx:1.27", "example.com/missing:1")
	h := k.Handler(true)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no reconcile pass") {
		t.Errorf("/readyz before the first pass = %d %q", code, body)
	}
	if err := k.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d with a registry failure; want 200", code)
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "1 of 2 wanted images missing") || !strings.Contains(body, "connection refused") {
		t.Errorf("/readyz = %d %q", code, body)
	}
	code, body := get("/status")
	var s Status
	if err := json.Unmarshal([]byte(body), &s); code != http.StatusOK || err != nil || len(s.Images) != 2 {
		t.Errorf("/status = %d %q (%v)", code, body, err)
	}
	if _, body := get("/metrics"); !strings.Contains(body, `image_keeper_pulls_total{result="failure"} 1`) || !strings.Contains(body, "image_keeper_wanted_images 2") || !strings.Contains(body, "image_keeper_pull_duration_seconds_bucket") {
		t.Errorf("/metrics lacks the keeper's metrics:\n%s", body)
	}
	var out bytes.Buffer
	PrintStatus(&out, k.Status())
	table := out.String()
	for _, want := range []string{"IMAGE", "PROTECTED", "docker.io/library/nginx:1.27", "yes", "example.com/missing:1", "no", "connection refused", "1 of 2 wanted images missing"} {
		if !strings.Contains(table, want) {
			t.Errorf("status table lacks %q:\n%s", want, table)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Under Run, pulls belong to a pool of PullConcurrency workers: a reload is taken while pulls
// are in flight, goroutines do not grow with the number of wanted images, and a retry after a
// failed pull is not held back to the next Interval.
func TestRunDoesNotWaitForPulls(t *testing.T) {
	server := newImageServer(t)
	server.mu.Lock()
	server.pullDelay = 3 * time.Second
	server.mu.Unlock()
	var refs []string
	for i := 0; i < 2000; i++ {
		refs = append(refs, fmt.Sprintf("example.com/app-%d:1", i))
	}
	opts := testOptions()
	opts.PullConcurrency = 2
	opts.PullTimeout = 10 * time.Second
	k := newTestKeeper(t, server, opts, refs...)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	reload := make(chan struct{}, 1)
	reloaded := make(chan time.Time, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		k.Run(ctx, reload, func() (*Wanted, error) {
			reloaded <- time.Now()
			return wantedImages(t, refs...), nil
		})
	}()
	inFlight := func() int { server.mu.Lock(); defer server.mu.Unlock(); return server.inFlight }
	deadline := time.Now().Add(5 * time.Second)
	for inFlight() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no pulls started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sent := time.Now()
	reload <- struct{}{}
	select {
	case at := <-reloaded:
		if wait := at.Sub(sent); wait > time.Second {
			t.Errorf("the reload waited %v for in-flight pulls", wait)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the reload was not taken while pulls were in flight")
	}
	if n := runtime.NumGoroutine(); n > before+40 {
		t.Errorf("goroutines grew from %d to %d for 2,000 wanted images", before, n)
	}
	server.mu.Lock()
	maxInFlight := server.maxInFlight
	server.mu.Unlock()
	if maxInFlight > 2 {
		t.Errorf("%d pulls in flight; PullConcurrency is 2", maxInFlight)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel: it waits for the pulls")
	}
}

// The DaemonSet mounts the runtime socket's directory read-only and the systemd unit makes
// nothing writable: connecting to a unix socket through a read-only bind mount must work.
func TestRuntimeSocketThroughReadOnlyMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	server := newImageServer(t)
	server.add("example.com/app:1")
	ro := t.TempDir()
	if err := syscall.Mount(filepath.Dir(server.socket), ro, "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(ro, syscall.MNT_DETACH) })
	if err := syscall.Mount("", ro, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	if err := os.WriteFile(filepath.Join(ro, "probe"), nil, 0o644); err == nil {
		t.Fatal("the mount is writable")
	}
	svc, err := NewRuntimeImageService("unix://" + filepath.Join(ro, filepath.Base(server.socket)))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	images, err := svc.ListImages(ctx, nil)
	if err != nil || len(images) != 1 {
		t.Fatalf("ListImages through a read-only mount: %v, %d images", err, len(images))
	}
}

// /readyz's reason names at most maxListed missing images, whatever the list.
func TestReadyReasonIsBounded(t *testing.T) {
	s := Status{LastReconcile: time.Now()}
	for i := range 20000 {
		s.Images = append(s.Images, ImageState{Reference: fmt.Sprintf("example.com/app-%d:1", i), LastError: strings.Repeat("x", 100)})
	}
	ready, reason := s.Ready()
	if ready || !strings.HasPrefix(reason, "20000 of 20000 wanted images missing: [example.com/app-0:1 (") || !strings.HasSuffix(reason, " and 19995 more") || len(reason) > 1000 {
		t.Errorf("reason (%d bytes): %.300s...", len(reason), reason)
	}
}
