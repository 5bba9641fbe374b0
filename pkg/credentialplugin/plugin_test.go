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

package credentialplugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// writePlugin writes an exec plugin that records each request and answers with response.
func writePlugin(t *testing.T, binDir, name, response string) (requests string) {
	t.Helper()
	requests = filepath.Join(t.TempDir(), "requests")
	script := fmt.Sprintf("#!/bin/sh\ncat >>%s\necho >>%s\nprintf '%%s' '%s'\n", requests, requests, response)
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(binDir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return requests
}

func writeConfig(t *testing.T, providers string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n"+providers), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func response(cacheKeyType, cacheDuration, key, user string) string {
	d := ""
	if cacheDuration != "" {
		d = fmt.Sprintf(`"cacheDuration":%q,`, cacheDuration)
	}
	return fmt.Sprintf(`{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":%q,%s"auth":{%q:{"username":%q,"password":"pw"}}}`, cacheKeyType, d, key, user)
}

func requestCount(t *testing.T, path string) int {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "\n")
}

func TestPluginGivesLoginsAndCaches(t *testing.T) {
	binDir := t.TempDir()
	requests := writePlugin(t, binDir, "ecr", response("Registry", "", "*.dkr.ecr.eu-west-1.amazonaws.com", "AWS"))
	config := writeConfig(t, `  - name: ecr
    matchImages: ["*.dkr.ecr.*.amazonaws.com"]
    defaultCacheDuration: 1h
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    args: [get-credentials]
    env: [{name: AWS_PROFILE, value: nodes}]
`)
	p, err := Load(config, binDir)
	if err != nil {
		t.Fatal(err)
	}
	image := "123.dkr.ecr.eu-west-1.amazonaws.com/team/app:1"
	for i := 0; i < 3; i++ {
		auth := p.For(context.Background(), image)
		if auth == nil || auth.Username != "AWS" || auth.Password != "pw" || auth.ServerAddress != "" {
			t.Fatalf("login %+v; want AWS:pw without ServerAddress", auth)
		}
	}
	// Cached per registry for defaultCacheDuration: one run for three look-ups and another image.
	if auth := p.For(context.Background(), "123.dkr.ecr.eu-west-1.amazonaws.com/other:2"); auth == nil {
		t.Fatal("no login for another image of the same registry")
	}
	if n := requestCount(t, requests); n != 1 {
		t.Errorf("the plugin ran %d times; want 1 (Registry cache)", n)
	}
	data, _ := os.ReadFile(requests)
	var req struct{ APIVersion, Kind, Image string }
	if err := json.Unmarshal([]byte(strings.SplitN(string(data), "\n", 2)[0]), &req); err != nil {
		t.Fatalf("request %q: %v", data, err)
	}
	if req.APIVersion != "credentialprovider.kubelet.k8s.io/v1" || req.Kind != "CredentialProviderRequest" || req.Image != image {
		t.Errorf("request %+v", req)
	}
	// Images the provider does not match never run it.
	if auth := p.For(context.Background(), "ghcr.io/acme/app:1"); auth != nil {
		t.Errorf("login %+v for an image no provider matches", auth)
	}
	if n := requestCount(t, requests); n != 1 {
		t.Errorf("the plugin ran for an image it does not match")
	}
}

// The bubble's clock: the sleep past the response's cacheDuration takes no real time.
func TestPluginCacheDurationFromResponse(t *testing.T) {
	binDir := t.TempDir()
	requests := writePlugin(t, binDir, "short", response("Image", "100ms", "registry.example.com", "u"))
	config := writeConfig(t, "  - name: short\n    matchImages: [registry.example.com]\n    defaultCacheDuration: 1h\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n")
	synctest.Test(t, func(t *testing.T) {
		p, err := Load(config, binDir)
		if err != nil {
			t.Fatal(err)
		}
		p.For(context.Background(), "registry.example.com/app:1")
		p.For(context.Background(), "registry.example.com/app:2") // same image repository: cached
		time.Sleep(99 * time.Millisecond)
		p.For(context.Background(), "registry.example.com/app:1") // still cached
		if n := requestCount(t, requests); n != 1 {
			t.Errorf("the plugin ran %d times within its 100ms cacheDuration; want 1", n)
		}
		time.Sleep(time.Millisecond)
		p.For(context.Background(), "registry.example.com/app:1") // expired: runs again
		if n := requestCount(t, requests); n != 2 {
			t.Errorf("the plugin ran %d times; want 2 (a 100ms cacheDuration from the response)", n)
		}
	})
}

func TestPluginFailures(t *testing.T) {
	binDir := t.TempDir()
	writePlugin(t, binDir, "bad-kind", `{"apiVersion":"v1","kind":"Pod"}`)
	writePlugin(t, binDir, "bad-cache", `{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Forever"}`)
	if err := os.WriteFile(filepath.Join(binDir, "fails"), []byte("#!/bin/sh\necho denied >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"bad-kind", "bad-cache", "fails"} {
		config := writeConfig(t, fmt.Sprintf("  - name: %s\n    matchImages: [registry.example.com]\n    defaultCacheDuration: 1h\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n", name))
		p, err := Load(config, binDir)
		if err != nil {
			t.Fatal(err)
		}
		if auth := p.For(context.Background(), "registry.example.com/app:1"); auth != nil {
			t.Errorf("%s: login %+v from a failing plugin", name, auth)
		}
		pr := p.providers[0]
		if _, err := pr.exec(t.Context(), "registry.example.com/app:1"); err == nil {
			t.Errorf("%s: no error", name)
		} else if name == "fails" && !strings.Contains(err.Error(), "denied") {
			t.Errorf("%s: error %v does not carry the plugin's stderr", name, err)
		}
	}
}

// A plugin's output is capped for real: io.Copy, which exec uses, takes a writer's ReadFrom
// when it has one, and the buffer must not have one that grows past the cap.
func TestPluginOutputCapped(t *testing.T) {
	var b limitedBuffer
	n, err := io.Copy(&b, io.LimitReader(zeros{}, 16*maxOutput))
	if err != nil || n != 16*maxOutput {
		t.Fatalf("io.Copy = %d, %v", n, err)
	}
	if len(b.Bytes()) != maxOutput {
		t.Errorf("kept %d bytes of %d; want the first %d", len(b.Bytes()), n, maxOutput)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A plugin that hangs, with a child that keeps its stdout open, is killed with the child when
// the pull's context ends, and the pull goes on without credentials at once (it waited for the
// child's 300 s before). A failed plugin's stderr is quoted and cut, never echoed raw.
func TestPluginKilledWithItsChildren(t *testing.T) {
	binDir := t.TempDir()
	script := "#!/bin/sh\nsleep 300 &\nprintf '\\033[31mtoken=abc %0500d\\n' 0 >&2\nsleep 300\n"
	if err := os.WriteFile(filepath.Join(binDir, "hangs"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	config := writeConfig(t, "  - name: hangs\n    matchImages: [registry.example.com]\n    defaultCacheDuration: 1h\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n")
	p, err := Load(config, binDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = p.providers[0].exec(ctx, "registry.example.com/app:1")
	// Generous: the failure this guards against takes 300 s.
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the cancelled plugin held the pull for %v", took)
	}
	if err == nil {
		t.Fatal("a killed plugin gave no error")
	}
	if strings.Contains(err.Error(), "\x1b[31m") || !strings.Contains(err.Error(), `\x1b[31mtoken=abc`) || !strings.Contains(err.Error(), "more bytes of stderr") {
		t.Errorf("stderr in the error: %q; want it quoted and cut", err.Error())
	}
}

// A plugin that answers and exits 0 while a child it started keeps its output open: the answer
// is taken (after waitDelay), and the child is killed with the plugin's process group.
func TestPluginAnswerWithLingeringChild(t *testing.T) {
	binDir := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	script := fmt.Sprintf("#!/bin/sh\ncat >/dev/null\nsleep 300 &\necho $! >%s\nprintf '%%s' '%s'\n", pidFile, response("Image", "", "registry.example.com", "u"))
	if err := os.WriteFile(filepath.Join(binDir, "lingers"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	config := writeConfig(t, "  - name: lingers\n    matchImages: [registry.example.com]\n    defaultCacheDuration: 1h\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n")
	p, err := Load(config, binDir)
	if err != nil {
		t.Fatal(err)
	}
	if auth := p.For(t.Context(), "registry.example.com/app:1"); auth == nil || auth.Username != "u" {
		t.Errorf("login %+v; want the plugin's answer", auth)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	// SIGKILL is delivered asynchronously: the child is gone (or a zombie) soon after.
	gone := func() bool {
		stat, err := os.ReadFile("/proc/" + strings.TrimSpace(string(data)) + "/stat")
		return err != nil || strings.Contains(string(stat), ") Z ")
	}
	for deadline := time.Now().Add(10 * time.Second); !gone() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !gone() {
		t.Error("the plugin's child still runs 10 s after the plugin returned")
	}
}

func TestLoadErrors(t *testing.T) {
	binDir := t.TempDir()
	writePlugin(t, binDir, "ok", "{}")
	base := "    matchImages: [registry.example.com]\n    defaultCacheDuration: 1h\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n"
	for _, tc := range []struct{ name, providers, want string }{
		{"missing binary", "  - name: missing\n" + base, "no executable"},
		{"slash in name", "  - name: ../ok\n" + base, "name must be a file name"},
		{"duplicate", "  - name: ok\n" + base + "  - name: ok\n" + base, "duplicate name"},
		{"no matchImages", "  - name: ok\n    defaultCacheDuration: 1h\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n", "matchImages: at least one"},
		{"no cache duration", "  - name: ok\n    matchImages: [a.io]\n    apiVersion: credentialprovider.kubelet.k8s.io/v1\n", "defaultCacheDuration must be set"},
		{"old apiVersion", "  - name: ok\n    matchImages: [a.io]\n    defaultCacheDuration: 1h\n    apiVersion: credentialprovider.kubelet.k8s.io/v1alpha1\n", `apiVersion "credentialprovider.kubelet.k8s.io/v1alpha1"`},
		{"unknown field", "  - name: ok\n    matchImage: [a.io]\n" + base, "unknown field"},
		{"service account tokens", "  - name: ok\n" + base + "    tokenAttributes: {serviceAccountTokenAudience: x, requireServiceAccount: true}\n", "tokenAttributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tc.providers), binDir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
