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
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The image is reproducible (one binary, one digest) and holds the binary as its entrypoint.
func TestBuildIsReproducible(t *testing.T) {
	dir := t.TempDir()
	binary := filepath.Join(dir, "image-keeper")
	if err := os.WriteFile(binary, []byte("#!fake binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	first, err := build(binary, "v1", filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := build(binary, "v1", filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatalf("two builds of one binary: %s and %s", first, second)
	}
	blob := func(d string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, "a", "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	var m struct {
		Config descriptor
		Layers []descriptor
	}
	if err := json.Unmarshal(blob(first), &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("manifest: %v, %d layers", err, len(m.Layers))
	}
	var config struct {
		Config struct {
			Entrypoint []string
			User       string
		}
	}
	if err := json.Unmarshal(blob(m.Config.Digest), &config); err != nil {
		t.Fatal(err)
	}
	if len(config.Config.Entrypoint) != 1 || config.Config.Entrypoint[0] != "/image-keeper" {
		t.Errorf("entrypoint %q", config.Config.Entrypoint)
	}
	zr, err := gzip.NewReader(strings.NewReader(string(blob(m.Layers[0].Digest))))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	content, _ := io.ReadAll(tr)
	if hdr.Name != "image-keeper" || hdr.Mode != 0o755 || string(content) != "#!fake binary" {
		t.Errorf("layer entry %s mode %o content %q", hdr.Name, hdr.Mode, content)
	}
}

func TestPushRefusesABadReference(t *testing.T) {
	for _, ref := range []string{"image-keeper:v1", "registry.example.com/image-keeper", "nginx"} {
		if _, err := push(t.TempDir(), ref, true); err == nil || !strings.Contains(err.Error(), "want registry/repository:tag") {
			t.Errorf("push --ref %q: %v", ref, err)
		}
	}
}
