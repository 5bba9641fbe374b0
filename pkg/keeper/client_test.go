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
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestFetchStatus(t *testing.T) {
	ready := Status{LastReconcile: time.Unix(1, 0), Images: []ImageState{{Reference: "docker.io/library/nginx:1", Present: true}}}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		wantErr string
	}{
		{name: "ok", handler: func(w http.ResponseWriter, r *http.Request) { _ = json.NewEncoder(w).Encode(ready) }},
		{name: "server error", handler: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }, wantErr: "/status answered 500 Internal Server Error: boom"},
		{name: "not a status", handler: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) }, wantErr: "bad /status answer"},
		{name: "too slow", handler: func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, wantErr: "context deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := httptest.NewServer(tc.handler)
			defer server.Close()
			start := time.Now()
			got, err := FetchStatus(context.Background(), server.URL, 300*time.Millisecond)
			if time.Since(start) > 3*time.Second {
				t.Errorf("FetchStatus took %v with a 300ms timeout", time.Since(start))
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if ok, reason := got.Ready(); !ok {
					t.Errorf("status not ready: %s", reason)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v; want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestHTTPServerBounds(t *testing.T) {
	srv := NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for name, d := range map[string]time.Duration{"ReadHeaderTimeout": srv.ReadHeaderTimeout, "ReadTimeout": srv.ReadTimeout, "WriteTimeout": srv.WriteTimeout, "IdleTimeout": srv.IdleTimeout} {
		if d <= 0 {
			t.Errorf("%s is unset: a client could hold a connection forever", name)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 1<<20))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 1 MiB header got %s; want 431", resp.Status)
	}
}

// Text from a runtime or registry reaches a terminal: control characters are quoted, not sent.
func TestPrintStatusQuotesControlCharacters(t *testing.T) {
	var out strings.Builder
	// Every string field, as a hostile server behind status --server could fill them.
	const esc = "\x1b[2J\x1b]0;owned\x07"
	PrintStatus(&out, Status{LastReconcile: time.Unix(1, 0), RuntimeError: "down " + esc, ConfigError: esc, NotPullable: []string{"a" + esc},
		Images: []ImageState{{
			Reference: "docker.io/library/nginx:1" + esc,
			ImageID:   "sha256:" + esc,
			LastError: "pull failed: " + esc + " and a\nnew line",
			Protected: Protection{State: Unprotected, Reason: esc},
		}}})
	if strings.ContainsAny(out.String(), "\x1b\x07") {
		t.Fatalf("control characters reached the table: %q", out.String())
	}
	if !strings.Contains(out.String(), `\x1b[2J`) {
		t.Errorf("the escape is not shown quoted: %q", out.String())
	}
}

func TestLoadQuotesHugeEntriesBounded(t *testing.T) {
	huge := "Nginx:" + strings.Repeat("a", 5<<20)
	_, err := Load(Sources{Images: []string{huge}})
	if err == nil {
		t.Fatal("a bad 5 MB entry was accepted")
	}
	if len(err.Error()) > 2000 {
		t.Errorf("the error echoes the entry: %d bytes", len(err.Error()))
	}
	if !strings.Contains(err.Error(), "more bytes") {
		t.Errorf("the error does not say the entry was cut: %.300s", err)
	}
}
