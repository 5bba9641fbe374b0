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

// End-to-end tests on real nodes: containerd 2.4, containerd 1.6 or CRI-O with runc, Debian's
// docker-registry on loopback, the patched kubelet (standalone or on a throwaway control plane)
// and image-keeper. Run with `make e2e`; README.md says how the harness works and how to run
// one scenario. Scenarios are in files by concern.
package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var repoRoot, binDir, logsDir string

func TestMain(m *testing.M) {
	wd, _ := os.Getwd()
	repoRoot = filepath.Join(wd, "..", "..")
	binDir = envOr("E2E_BIN", filepath.Join(repoRoot, "_output", "bin"))
	logsDir = envOr("E2E_LOGS", filepath.Join(repoRoot, "_output", "e2e-logs"))
	for _, bin := range []string{"kubelet", "image-keeper"} {
		if _, err := os.Stat(filepath.Join(binDir, bin)); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s not built (%v); run make e2e\n", bin, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
