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
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
)

func TestFlagFloors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--image", "nginx:1", "--interval", "1ns"}, "--interval 1ns: must be at least 1s"},
		{[]string{"--image", "nginx:1", "--max-backoff", "1ns"}, "--max-backoff 1ns: must be at least 1s"},
		{[]string{"--image", "nginx:1", "--pull-timeout", "1s"}, "--pull-timeout 1s: must be at least 10s"},
		{[]string{"--image", "nginx:1", "--pull-concurrency", "0"}, "--pull-concurrency 0: must be between 1 and 32"},
		{[]string{"--image", "nginx:1", "--pull-concurrency", "1000000"}, "--pull-concurrency 1000000: must be between 1 and 32"},
		{[]string{"--image", "nginx:1", "--node-status-heartbeat", "1s"}, "--node-status-heartbeat 1s: must be at least 10s"},
		{[]string{"--image", "nginx:1", "--status-listen", ":10357"}, `--status-listen ":10357": not a loopback address`},
		{[]string{"--image", "nginx:1", "--status-listen", "10.0.0.1:10357"}, `--status-listen "10.0.0.1:10357": not a loopback address`},
	} {
		if _, err := parseFlags(tc.args, false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q) = %v; want an error containing %q", tc.args, err, tc.want)
		}
	}
	if _, err := parseFlags([]string{"--image", "nginx:1", "--interval", "1s", "--max-backoff", "1s", "--pull-timeout", "10s"}, false); err != nil {
		t.Errorf("the floors themselves are refused: %v", err)
	}
	if _, err := parseFlags([]string{"--server", "http://127.0.0.1:1", "--timeout", "0s"}, true); err == nil || !strings.Contains(err.Error(), "--timeout 0s: must be positive") {
		t.Errorf("status --timeout 0s: %v", err)
	}
}

// /status is served on loopback addresses only.
func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:10356": true, "127.1.2.3:1": true, "[::1]:10357": true, "localhost:10357": true,
		":10356": false, "0.0.0.0:10356": false, "[::]:10356": false, "10.244.0.5:10356": false, "example.com:80": false, "127.0.0.1": false,
	} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %v; want %v", addr, got, want)
		}
	}
}

// `image-keeper status --server` fails (non-zero exit) when the daemon is not ready or answers
// with an error, so that scripts and probes can rely on it.
func TestStatusExitStatus(t *testing.T) {
	ready := keeper.Status{LastReconcile: time.Unix(1, 0), Images: []keeper.ImageState{{Reference: "docker.io/library/nginx:1", Present: true}}}
	missing := keeper.Status{LastReconcile: time.Unix(1, 0), Images: []keeper.ImageState{{Reference: "docker.io/library/nginx:1", LastError: "connection refused \x1b]0;owned\x07"}}}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		wantErr string
	}{
		{"ready", func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(ready) }, ""},
		{"not ready", func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(missing) }, "not ready: 1 of 1 wanted images missing"},
		{"server error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }, "500 Internal Server Error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := httptest.NewServer(tc.handler)
			defer server.Close()
			cfg, err := parseFlags([]string{"--server", server.URL, "--timeout", "5s"}, true)
			if err != nil {
				t.Fatal(err)
			}
			err = runStatus(context.Background(), cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("runStatus = %v; want an error containing %q", err, tc.wantErr)
			}
			if strings.ContainsAny(err.Error(), "\x1b\x07") {
				t.Errorf("the server's control characters reach the terminal: %q", err.Error())
			}
		})
	}
}

// SIGHUP is caught from package initialization on: systemctl reload right after start must not
// kill image-keeper, which is what SIGHUP does to a Go program that has not asked for it. The
// test binary ran this package's initialization too; were the handler installed later (in main
// or run), the signal below would kill the test process.
func TestSIGHUPBeforeRun(t *testing.T) {
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case sig := <-hupSignals:
		if sig != syscall.SIGHUP {
			t.Errorf("received %v", sig)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SIGHUP was not delivered to hupSignals")
	}
}

// Without an API server image-keeper publishes nothing and takes no pull slots; with one, it
// needs the node's name.
func TestNewClient(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if p, err := newClient(&config{}); p != nil || err != nil {
		t.Errorf("no API server: %v, %v; want nothing published and no error", p, err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: https://127.0.0.1:6443}}]\nusers: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(&config{kubeconfig: kubeconfig}); err == nil || !strings.Contains(err.Error(), "--node-name") || !strings.Contains(err.Error(), "NODE_NAME") {
		t.Errorf("no node name: %v; want an error naming --node-name and NODE_NAME", err)
	}
	if p, err := newClient(&config{kubeconfig: kubeconfig, nodeName: "node-1", heartbeat: time.Minute}); p == nil || err != nil {
		t.Errorf("kubeconfig and node name: %v, %v", p, err)
	}
	if _, err := newClient(&config{kubeconfig: filepath.Join(t.TempDir(), "missing")}); err == nil || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Errorf("missing kubeconfig: %v; want an error naming --kubeconfig", err)
	}
	// Not a regular file, or too large: refused before clientcmd reads it (it would read
	// /dev/zero forever, and wait on a FIFO for a writer).
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(t.TempDir(), "huge")
	if err := os.WriteFile(huge, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/dev/zero": "not a regular file", fifo: "not a regular file", huge: "larger than"} {
		if _, err := newClient(&config{kubeconfig: path, nodeName: "node-1"}); err == nil || !strings.Contains(err.Error(), "--kubeconfig") || !strings.Contains(err.Error(), want) {
			t.Errorf("--kubeconfig %s: %v; want an error containing %q", path, err, want)
		}
	}
}

// explain's exit statuses, as scripts read them: 0 answered, 1 could not answer (runtime
// unreachable), 2 bad flags or input, 3 --strict and an entry matches nothing.
func TestExplainExitStatus(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "kubelet.yaml")
	if err := os.WriteFile(config, []byte("apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nfeatureGates: {ImageGCExclusion: true}\nimageGCExclude: [\"nginx:1.*\", \"registry.exmaple.com/*\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stderr string
	}{
		{"review", []string{"--config", config}, "nginx:1.27\n", 0, ""},
		{"strict", []string{"--config", config, "--strict"}, "nginx:1.27\n", 3, `imageGCExclude entry "registry.exmaple.com/*" matches no image`},
		{"bad reference", []string{"--config", config}, "nginx:1.27\nNginx\n", 2, `line 2: "Nginx"`},
		{"bad output", []string{"--config", config, "-o", "yaml"}, "", 2, `--output "yaml": want table or json`},
		{"no allowlist", nil, "", 2, "give --kubelet-config"},
		{"both", []string{"--config", config, "--kubelet-config", config}, "", 2, "does not go with --kubelet-config"},
		{"missing config", []string{"--config", filepath.Join(dir, "nope.yaml")}, "", 2, "nope.yaml"},
		{"runtime unreachable", []string{"--kubelet-config", config, "--runtime-endpoint", "unix://" + filepath.Join(dir, "none.sock"), "--timeout", "10s"}, "", 1, "none.sock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := explainMain(tc.args, strings.NewReader(tc.stdin), &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.stderr)
			}
		})
	}
}
