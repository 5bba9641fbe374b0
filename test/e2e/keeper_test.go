//go:build e2e

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

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/framework"
)

// keeperNode is a node on runtime with the kubelet (allowlist on, protecting e2e/kept) and
// image-keeper keeping e2e/kept:1 and, unprotected, e2e/unprotected:1.
func keeperNode(t *testing.T, runtime framework.Runtime) (n *framework.Node, pause, kept, unprotected *framework.Image) {
	t.Helper()
	n = newNodeOn(t, runtime)
	pause = push(t, n, framework.ImageSpec{Repository: "e2e/pause", Tag: "1"})
	kept = push(t, n, framework.ImageSpec{Repository: "e2e/kept", Tag: "1"})
	unprotected = push(t, n, framework.ImageSpec{Repository: "e2e/unprotected", Tag: "1"})
	startRuntime(t, n, pause)
	pull(t, n, pause.Ref)
	config, err := n.WriteKubeletConfig("kubelet", framework.KubeletConfig{Gate: true, Exclude: []string{pause.Ref, kept.Ref}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.StartKubelet(config); err != nil {
		t.Fatal(err)
	}
	if err := n.StartKeeper("--kubelet-config", config, "--image", kept.Ref, "--image", unprotected.Ref, "--interval", "2s", "--max-backoff", "2s"); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(60*time.Second, 500*time.Millisecond, func() bool { return present(t, n)[kept.Ref] }) {
		t.Fatalf("image-keeper did not pull %s", kept.Ref)
	}
	return n, pause, kept, unprotected
}

// keeperLegs are the runtimes of the image-keeper scenarios that need no pod: containerd 2.4 and
// CRI-O. (containerd 1.6 answers the same CRI image calls; its leg of TestKeeperPrivateRegistry
// pulls, fails and removes through image-keeper there.)
var keeperLegs = []string{"containerd-2.4", "cri-o-1.34"}

// Scenario 3: image-keeper restores an image removed behind its back, and warns about a wanted
// image the kubelet's allowlist does not protect.
func TestKeeperRestores(t *testing.T) {
	t.Parallel()
	legs(t, keeperLegs, keeperRestores)
}

func keeperRestores(t *testing.T, runtime framework.Runtime) {
	n, _, kept, unprotected := keeperNode(t, runtime)
	if !strings.Contains(n.Keeper.LogText(), "wanted image is not protected by the kubelet's allowlist") || !strings.Contains(n.Keeper.LogText(), unprotected.Ref) {
		t.Errorf("no warning about %s, which the allowlist does not protect:\n%s", unprotected.Ref, framework.Tail(n.Keeper, 10))
	}
	_, before := getURL("http://" + n.KeeperAddr + "/metrics")
	if err := n.RemoveImage(kept.Ref); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	if !framework.Eventually(2*time.Second+15*time.Second, 200*time.Millisecond, func() bool { return present(t, n)[kept.Ref] }) {
		t.Fatalf("%s not restored within interval + 15s", kept.Ref)
	}
	t.Logf("restored %s %v after crictl rmi", kept.Ref, time.Since(removed).Round(100*time.Millisecond))
	// The image shows up in containerd just before image-keeper counts its pull.
	var after string
	if !framework.Eventually(5*time.Second, 100*time.Millisecond, func() bool {
		_, after = getURL("http://" + n.KeeperAddr + "/metrics")
		return pullsOK(after) > pullsOK(before)
	}) {
		t.Errorf("image_keeper_pulls_total{result=\"success\"} did not grow: %v -> %v", pullsOK(before), pullsOK(after))
	}
	// `image-keeper status`, against the daemon and against the runtime directly.
	for _, args := range [][]string{
		{"status", "--server", "http://" + n.KeeperAddr},
		{"status", "--runtime-endpoint", n.RuntimeEndpoint(), "--image", kept.Ref, "--kubelet-config", filepath.Join(n.Root, "kubelet", "kubelet.yaml")},
	} {
		out, err := exec.Command(filepath.Join(binDir, "image-keeper"), args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "PROTECTED") || !strings.Contains(string(out), kept.Ref) || !strings.Contains(string(out), "yes: "+kept.Ref) {
			t.Errorf("image-keeper %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	code, body := getURL("http://" + n.KeeperAddr + "/status")
	var status keeper.Status
	if err := json.Unmarshal([]byte(body), &status); code != http.StatusOK || err != nil {
		t.Fatalf("/status = %d, %v:\n%s", code, err, body)
	}
	protection := map[string]keeper.Protection{}
	for _, img := range status.Images {
		protection[img.Reference] = img.Protected
	}
	if p := protection[kept.Ref]; p.State != keeper.Protected || p.Entry != kept.Ref {
		t.Errorf("/status: %s protected %+v; want yes by its own entry", kept.Ref, p)
	}
	if p := protection[unprotected.Ref]; p.State != keeper.Unprotected || !strings.Contains(p.Reason, "the kubelet's garbage collection would delete it") {
		t.Errorf("/status: %s protected %+v; want no", unprotected.Ref, p)
	}
}

// pullsOK reads image_keeper_pulls_total{result="success"}, -1 if the metrics do not parse.
func pullsOK(metrics string) float64 {
	v, err := framework.MetricSum(metrics, "image_keeper_pulls_total", "result", "success")
	if err != nil {
		return -1
	}
	return v
}

// runKeeperOnce runs `image-keeper --once` against the node's containerd and returns its exit
// error and output.
func runKeeperOnce(t *testing.T, n *framework.Node, name string, args ...string) (string, error) {
	t.Helper()
	p, err := framework.Start(n.LogDir, name, append([]string{filepath.Join(n.Bin, "image-keeper"),
		"--runtime-endpoint", n.RuntimeEndpoint(), "--listen", "127.0.0.1:0", "--once", "-v=2"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	exited, exitErr := p.Wait(2 * time.Minute)
	if !exited {
		p.Stop(5 * time.Second)
		t.Fatalf("image-keeper --once did not exit; log:\n%s", framework.Tail(p, 20))
	}
	return p.LogText(), exitErr
}

// Private registry: a registry that requires a login (htpasswd). image-keeper pulls with the
// docker config.json login under each key form people write ("host:port", "https://host:port",
// "http://host:port/v2/"), passed as the kubelet passes it, on containerd 2.4, 1.6 and CRI-O;
// without a login the pull fails and --once says so.
func TestKeeperPrivateRegistry(t *testing.T) {
	t.Parallel()
	legs(t, nil, func(t *testing.T, runtime framework.Runtime) {
		n := newNodeOn(t, runtime, func(n *framework.Node) {
			n.RegistryUser, n.RegistryPassword = "e2e", fmt.Sprintf("pw-%d", time.Now().UnixNano())
		})
		root := n.Root
		private := push(t, n, framework.ImageSpec{Repository: "e2e/private", Tag: "1"})
		startRuntimeWithPause(t, n)

		out, exitErr := runKeeperOnce(t, n, "keeper-anonymous", "--image", private.Ref)
		if exitErr == nil || present(t, n)[private.Ref] {
			t.Fatalf("an anonymous pull from a registry that requires a login succeeded:\n%s", out)
		}
		// What the runtime says of the refusal reaches the operator unchanged (docs/allowlist.md,
		// "Runtimes").
		refusal := map[string]string{
			"containerd-2.4": "authorization failed: no basic auth credentials",
			"containerd-1.6": "401 Unauthorized",
			"cri-o-1.34":     "authentication required",
		}[runtime.Name()]
		if !strings.Contains(out, refusal) {
			t.Errorf("the failed anonymous pull does not say %q:\n%s", refusal, out)
		}
		auth := base64.StdEncoding.EncodeToString([]byte(n.RegistryUser + ":" + n.RegistryPassword))
		for i, key := range []string{n.RegistryAddr, "https://" + n.RegistryAddr, "http://" + n.RegistryAddr + "/v2/"} {
			config := filepath.Join(root, fmt.Sprintf("config-%d.json", i))
			if err := os.WriteFile(config, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, key, auth)), 0o600); err != nil {
				t.Fatal(err)
			}
			out, exitErr := runKeeperOnce(t, n, fmt.Sprintf("keeper-login-%d", i), "--image", private.Ref, "--docker-config", config)
			if exitErr != nil || !present(t, n)[private.Ref] {
				t.Fatalf("key %q: the pull with the login failed (%v):\n%s", key, exitErr, out)
			}
			if strings.Contains(out, n.RegistryPassword) || strings.Contains(out, auth) {
				t.Fatalf("image-keeper logged the secret")
			}
			if err := n.RemoveImage(private.Ref); err != nil {
				t.Fatal(err)
			}
		}

		// The kubelet's image credential provider protocol: an exec plugin gives the login.
		binDir := filepath.Join(root, "credential-plugins")
		if err := os.MkdirAll(binDir, 0o755); err != nil {
			t.Fatal(err)
		}
		answer := fmt.Sprintf(`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Registry","auth":{%q:{"username":%q,"password":%q}}}`, n.RegistryAddr, n.RegistryUser, n.RegistryPassword)
		if err := os.WriteFile(filepath.Join(binDir, "e2e-login"), []byte("#!/bin/sh\ncat >/dev/null\nprintf '%s' '"+answer+"'\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		providers := filepath.Join(root, "credential-providers.yaml")
		if err := os.WriteFile(providers, []byte(fmt.Sprintf("apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: e2e-login\n    matchImages: [%q]\n    defaultCacheDuration: 1m\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n", n.RegistryAddr)), 0o644); err != nil {
			t.Fatal(err)
		}
		out, exitErr = runKeeperOnce(t, n, "keeper-plugin", "--image", private.Ref, "--image-credential-provider-config", providers, "--image-credential-provider-bin-dir", binDir)
		if exitErr != nil || !present(t, n)[private.Ref] {
			t.Fatalf("the pull with the credential provider's login failed (%v):\n%s", exitErr, out)
		}
	})
}

// image-keeper needs no root: as user 65532, with the runtime socket's group among its groups (the
// socket chowned to root:65532, as containerd's [grpc] gid makes it), it pulls and keeps; without
// that group the runtime refuses it, and it says so and exits non-zero.
func TestKeeperNonRoot(t *testing.T) {
	t.Parallel()
	n := newNodeOn(t, runtimes(t, "containerd-2.4")[0])
	img := push(t, n, framework.ImageSpec{Repository: "e2e/nonroot", Tag: "1"})
	startRuntimeWithPause(t, n)
	socket := strings.TrimPrefix(n.RuntimeEndpoint(), "unix://")
	if err := os.Chown(socket, 0, 65532); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(socket, 0o660); err != nil {
		t.Fatal(err)
	}
	// The node's directories are root's (0700): let others traverse those above the socket.
	for dir := filepath.Dir(socket); strings.HasPrefix(dir, n.Root); dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, group string) (string, error) {
		p, err := framework.Start(n.LogDir, name, []string{"setpriv", "--reuid=65532", "--regid=" + group, "--groups=" + group, "--inh-caps=-all", "--bounding-set=-all",
			filepath.Join(n.Bin, "image-keeper"), "--runtime-endpoint", n.RuntimeEndpoint(), "--listen", "127.0.0.1:0", "--once", "--image", img.Ref})
		if err != nil {
			t.Fatal(err)
		}
		if exited, err := p.Wait(2 * time.Minute); !exited {
			p.Stop(5 * time.Second)
			t.Fatalf("image-keeper --once as user 65532 did not exit: %s", framework.Tail(p, 20))
		} else {
			return p.LogText(), err
		}
		return "", nil
	}
	out, err := run("keeper-nogroup", "65533")
	if err == nil || !strings.Contains(out, "permission denied") {
		t.Errorf("without the socket's group: %v; want a refusal naming the permission:\n%s", err, out)
	}
	out, err = run("keeper-nonroot", "65532")
	if err != nil || !present(t, n)[img.Ref] {
		t.Fatalf("as user 65532 with the socket's group, image-keeper did not pull (%v):\n%s", err, out)
	}
}

// A config broken while image-keeper is down (a bad ConfigMap rollout, then a reboot) does not
// leave the node keeping nothing: with --state-dir image-keeper starts from the last config that
// loaded, restores its images, and says the config is stale (/readyz, image_keeper_config_stale)
// until a good one is written, which it then loads by itself.
func TestKeeperLastGoodConfig(t *testing.T) {
	t.Parallel()
	n := newNodeOn(t, runtimes(t, "containerd-2.4")[0])
	a := push(t, n, framework.ImageSpec{Repository: "e2e/lastgood-a", Tag: "1"})
	b := push(t, n, framework.ImageSpec{Repository: "e2e/lastgood-b", Tag: "1"})
	startRuntimeWithPause(t, n)
	config, state := filepath.Join(n.Root, "keeper.yaml"), filepath.Join(n.Root, "keeper-state")
	if err := framework.WriteKeeperConfig(config, a.Ref); err != nil {
		t.Fatal(err)
	}
	start := func() {
		t.Helper()
		if err := n.StartKeeper("--config", config, "--state-dir", state, "--interval", "2s"); err != nil {
			t.Fatal(err)
		}
	}
	readyz := func() (int, string) { return getURL("http://" + n.KeeperAddr + "/readyz") }
	stale := func() float64 {
		_, text := getURL("http://" + n.KeeperAddr + "/metrics")
		v, err := framework.MetricSum(text, "image_keeper_config_stale")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	start()
	if !framework.Eventually(time.Minute, 500*time.Millisecond, func() bool { code, _ := readyz(); return code == http.StatusOK }) {
		t.Fatalf("image-keeper not ready with a good config: %s", framework.Tail(n.Keeper, 10))
	}
	n.Keeper.Stop(5 * time.Second)

	// Down: the config breaks and the cached image goes.
	if err := os.WriteFile(config, []byte("apiVersion: "+keeper.APIVersion+"\nkind: "+keeper.Kind+"\nimages:\n  - E2E/Typo:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.RemoveImage(a.Ref); err != nil {
		t.Fatal(err)
	}
	start()
	if !framework.Eventually(time.Minute, 500*time.Millisecond, func() bool { return present(t, n)[a.Ref] }) {
		t.Fatalf("image-keeper did not restore %s from the last good config: %s", a.Ref, framework.Tail(n.Keeper, 10))
	}
	code, body := readyz()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "the config does not load") || !strings.Contains(body, "E2E/Typo:1") || !strings.Contains(body, "started from the last good config") {
		t.Errorf("/readyz with a broken config = %d %q; want 503 naming the entry and the last good config", code, body)
	}
	if v := stale(); v != 1 {
		t.Errorf("image_keeper_config_stale = %v with a broken config; want 1", v)
	}

	// Fixed: the new list loads without a restart.
	if err := framework.WriteKeeperConfig(config, a.Ref, b.Ref); err != nil {
		t.Fatal(err)
	}
	if !framework.Eventually(time.Minute, 500*time.Millisecond, func() bool {
		code, _ := readyz()
		return code == http.StatusOK && present(t, n)[b.Ref]
	}) {
		_, body := readyz()
		t.Fatalf("the fixed config did not load: %s\n%s", body, framework.Tail(n.Keeper, 10))
	}
	if v := stale(); v != 0 {
		t.Errorf("image_keeper_config_stale = %v after the fix; want 0", v)
	}
	if saved, err := os.ReadFile(filepath.Join(state, keeper.LastGoodFile)); err != nil || !strings.Contains(string(saved), b.Ref) {
		t.Errorf("the last good config after the fix: %q, %v; want the new list", saved, err)
	}
}
