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

package dockerconfig

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func login(user string) string {
	return fmt.Sprintf(`{"auth":%q}`, base64.StdEncoding.EncodeToString([]byte(user+":pw-"+user)))
}

func configOf(entries map[string]string) string {
	var parts []string
	for key, user := range entries {
		parts = append(parts, fmt.Sprintf("%q:%s", key, login(user)))
	}
	return `{"auths":{` + strings.Join(parts, ",") + `}}`
}

// TestKeyringMatchesLikeTheKubelet follows the cases of the kubelet's keyring tests
// (pkg/credentialprovider/keyring_test.go): which login an image gets, by key.
func TestKeyringMatchesLikeTheKubelet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		auths map[string]string
		image string
		want  string // user, "" for none
	}{
		{"bare host", map[string]string{"ghcr.io": "a"}, "ghcr.io/acme/app:1", "a"},
		{"scheme and /v2/", map[string]string{"https://ghcr.io/v2/": "a"}, "ghcr.io/acme/app:1", "a"},
		{"http scheme", map[string]string{"http://127.0.0.1:5000": "a"}, "127.0.0.1:5000/app:1", "a"},
		{"host:port", map[string]string{"127.0.0.1:5000": "a"}, "127.0.0.1:5000/app@sha256:0123", "a"},
		{"other port", map[string]string{"localhost:5000": "a"}, "localhost:5001/app:1", ""},
		{"other host", map[string]string{"ghcr.io": "a"}, "quay.io/acme/app:1", ""},
		{"most specific path first", map[string]string{"ghcr.io": "host", "ghcr.io/acme": "ns"}, "ghcr.io/acme/app:1", "ns"},
		{"path does not match", map[string]string{"ghcr.io/acme": "ns"}, "ghcr.io/other/app:1", ""},
		{"glob in a host part", map[string]string{"*.example.com": "a"}, "registry.example.com/app:1", "a"},
		{"glob spans one part only", map[string]string{"*.example.com": "a"}, "a.b.example.com/app:1", ""},
		{"Docker Hub by its v1 key", map[string]string{"https://index.docker.io/v1/": "hub"}, "docker.io/library/nginx:1.27", "hub"},
		{"Docker Hub by docker.io", map[string]string{"docker.io": "hub"}, "docker.io/acme/app:1", "hub"},
		{"docker.io wins over the v1 key", map[string]string{"docker.io": "new", "https://index.docker.io/v1/": "old"}, "docker.io/library/nginx:1", "new"},
		{"Hub login not used elsewhere", map[string]string{"https://index.docker.io/v1/": "hub"}, "ghcr.io/acme/app:1", ""},
		{"two spellings of one key: the first in sorted order", map[string]string{"ghcr.io": "plain", "https://ghcr.io": "scheme"}, "ghcr.io/a:1", "plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Several parses: map order must not change the answer.
			for i := 0; i < 20; i++ {
				k, err := Parse("config.json", []byte(configOf(tc.auths)))
				if err != nil {
					t.Fatal(err)
				}
				got := ""
				if auth := k.For(tc.image); auth != nil {
					got = auth.Username
					if auth.ServerAddress != "" {
						t.Fatalf("ServerAddress %q: the kubelet sends none, and containerd drops the login when url.Parse of it has another host", auth.ServerAddress)
					}
				}
				if got != tc.want {
					t.Fatalf("parse %d: login for %s = %q; want %q", i, tc.image, got, tc.want)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"not JSON", "{", "not a docker config.json"},
		{"credsStore", `{"auths":{},"credsStore":"desktop"}`, `credential helpers (credsStore "desktop", credHelpers for 0 registries) are not supported`},
		{"credHelpers", `{"credHelpers":{"123.dkr.ecr.eu-west-1.amazonaws.com":"ecr-login"}}`, "credHelpers for 1 registries) are not supported"},
		{"auth not base64", `{"auths":{"ghcr.io":{"auth":"!!s3cr3t"}}}`, `auths["ghcr.io"].auth is not base64`},
		{"auth without a colon", `{"auths":{"ghcr.io":{"auth":"` + base64.StdEncoding.EncodeToString([]byte("s3cr3t")) + `"}}}`, `auths["ghcr.io"].auth must encode user:password`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("config.json", []byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestFileIsReadAgainWhenItChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	write := func(data string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now().Add(-time.Hour)
	write(configOf(map[string]string{"ghcr.io": "first"}), start)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	user := func() string {
		if auth := f.For(context.Background(), "ghcr.io/a:1"); auth != nil {
			return auth.Username
		}
		return ""
	}
	if got := user(); got != "first" {
		t.Fatalf("login %q; want first", got)
	}
	// A rotated token of the same length: only the modification time changes.
	write(configOf(map[string]string{"ghcr.io": "secnd"}), start.Add(time.Minute))
	if got := user(); got != "secnd" {
		t.Fatalf("after a change, login %q; want secnd", got)
	}
	// A broken write keeps the last good logins.
	write("{", start.Add(2*time.Minute))
	if got := user(); got != "secnd" {
		t.Fatalf("after an invalid change, login %q; want the previous secnd", got)
	}
	write(configOf(map[string]string{"ghcr.io": "third"}), start.Add(3*time.Minute))
	if got := user(); got != "third" {
		t.Fatalf("after a fix, login %q; want third", got)
	}
}
