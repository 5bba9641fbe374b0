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
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxStatusBytes caps a /status answer read by FetchStatus: 20,000 wanted images fit.
const maxStatusBytes = 32 << 20

// NewHTTPServer serves h with bounds on every phase of a request and on header size, so that
// slow or idle clients cannot hold connections and memory.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// FetchStatus asks a running image-keeper at server ("http://127.0.0.1:10356") for its status,
// within timeout. An answer that is not 200 OK, or not a status, is an error that says so.
func FetchStatus(ctx context.Context, server string, timeout time.Duration) (Status, error) {
	var status Status
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(server, "/")+"/status", nil)
	if err != nil {
		return status, fmt.Errorf("--server %s: %w", server, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return status, fmt.Errorf("--server %s: %w", server, err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxStatusBytes)
	if resp.StatusCode != http.StatusOK {
		text, _ := io.ReadAll(io.LimitReader(body, 512))
		return status, fmt.Errorf("--server %s: /status answered %s: %s", server, resp.Status, oneLine(string(text)))
	}
	if err := json.NewDecoder(body).Decode(&status); err != nil {
		return status, fmt.Errorf("--server %s: bad /status answer: %w", server, err)
	}
	return status, nil
}
