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

package framework

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// ShapingProxy is an HTTP proxy on loopback in front of the registry that makes it behave like
// a remote one: every request waits Latency before it is forwarded, and response bodies are
// delivered at most BytesPerSecond.
type ShapingProxy struct {
	Addr           string
	Latency        time.Duration
	BytesPerSecond int64
	server         *http.Server

	mu       sync.Mutex
	requests []Request
}

// Request is one request the proxy served: the registry's request log.
type Request struct {
	Method, Path string
	// Start is when it reached the proxy, End when its response was delivered.
	Start, End time.Time
}

// Requests returns the requests served so far.
func (p *ShapingProxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

// RouteRegistryThrough makes the node's runtime pull from its registry (RegistryAddr) through
// p, as a mirror: hostsTOML is the registry's hosts.toml with the registry's URL and the
// mirror's given as REGISTRY and MIRROR. Image references stay the registry's, so that every
// node of a cluster wants the same list, and each node's pulls show in its own proxy's log.
// containerd reads the hosts.toml at every pull.
func (n *Node) RouteRegistryThrough(p *ShapingProxy, hostsTOML string) error {
	hosts := strings.NewReplacer("REGISTRY", "http://"+n.RegistryAddr, "MIRROR", "http://"+p.Addr).Replace(hostsTOML)
	return os.WriteFile(filepath.Join(n.path("containerd", "certs.d", n.RegistryAddr), "hosts.toml"), []byte(hosts), 0o644)
}

// StartShapingProxy serves on a free loopback port, forwarding to the node's registry, and
// tells containerd how to reach it (a hosts.toml, read at every pull).
func (n *Node) StartShapingProxy(latency time.Duration, bytesPerSecond int64) (*ShapingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	target := &url.URL{Scheme: "http", Host: n.RegistryAddr}
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &ShapingProxy{Addr: ln.Addr().String(), Latency: latency, BytesPerSecond: bytesPerSecond}
	rp.ModifyResponse = func(resp *http.Response) error {
		resp.Body = &throttledBody{ReadCloser: resp.Body, rate: bytesPerSecond, start: time.Now()}
		return nil
	}
	p.server = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
		rp.ServeHTTP(w, r)
		p.mu.Lock()
		p.requests = append(p.requests, Request{Method: r.Method, Path: r.URL.Path, Start: start, End: time.Now()})
		p.mu.Unlock()
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.server.Serve(ln) }()

	hostsDir := n.path("containerd", "certs.d", p.Addr)
	if err := os.MkdirAll(hostsDir, 0o755); err != nil {
		return nil, err
	}
	hosts := "server = \"http://" + p.Addr + "\"\n\n[host.\"http://" + p.Addr + "\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
	return p, os.WriteFile(filepath.Join(hostsDir, "hosts.toml"), []byte(hosts), 0o644)
}

// Stop closes the proxy.
func (p *ShapingProxy) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = p.server.Shutdown(ctx)
}

// throttledBody delivers at most rate bytes per second since the response started.
type throttledBody struct {
	io.ReadCloser
	rate  int64
	start time.Time
	sent  int64
}

func (b *throttledBody) Read(p []byte) (int, error) {
	if b.rate <= 0 {
		return b.ReadCloser.Read(p)
	}
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	n, err := b.ReadCloser.Read(p)
	b.sent += int64(n)
	due := b.start.Add(time.Duration(float64(b.sent) / float64(b.rate) * float64(time.Second)))
	if wait := time.Until(due); wait > 0 {
		time.Sleep(wait)
	}
	return n, err
}
