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

// Command image builds image-keeper's container image as an OCI image layout, reproducibly
// (fixed timestamps, sorted entries), and pushes a layout to a registry with the Distribution
// API:
//
//	go run ./hack/image build --binary _output/bin/image-keeper --version v0.2.0 --out _output/image-keeper.oci
//	go run ./hack/image push --layout _output/image-keeper.oci --ref registry.example.com/image-keeper:v0.2.0 [--plain-http]
//
// The image holds the static binary alone (no shell, no libc), runs it as its entrypoint, and
// runs as root: it must connect to the runtime's socket, which is root's (0660 root:root).
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// epoch is every timestamp in the image, so that one binary always gives one digest.
var epoch = time.Unix(0, 0).UTC()

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: image build|push [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "build":
		fs := flag.NewFlagSet("build", flag.ExitOnError)
		binary := fs.String("binary", "_output/bin/image-keeper", "the static image-keeper binary")
		version := fs.String("version", "dev", "org.opencontainers.image.version")
		out := fs.String("out", "_output/image-keeper.oci", "OCI image layout directory to write")
		_ = fs.Parse(os.Args[2:])
		var digest string
		if digest, err = build(*binary, *version, *out); err == nil {
			fmt.Printf("wrote %s: image-keeper %s, manifest %s\n", *out, *version, digest)
		}
	case "push":
		fs := flag.NewFlagSet("push", flag.ExitOnError)
		layout := fs.String("layout", "_output/image-keeper.oci", "OCI image layout directory")
		ref := fs.String("ref", "", "where to push: registry/repository:tag")
		plain := fs.Bool("plain-http", false, "talk HTTP, not HTTPS, to the registry (a loopback test registry)")
		_ = fs.Parse(os.Args[2:])
		var digest string
		if digest, err = push(*layout, *ref, *plain); err == nil {
			fmt.Printf("pushed %s@%s\n", *ref, digest)
		}
	default:
		err = fmt.Errorf("unknown command %q: want build or push", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "image: %v\n", err)
		os.Exit(1)
	}
}

func digestOf(data []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(data)) }

// build writes an OCI image layout with one layer holding /image-keeper, and returns the
// manifest digest.
func build(binary, version, out string) (string, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return "", err
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	if err := tw.WriteHeader(&tar.Header{Name: "image-keeper", Mode: 0o755, Size: int64(len(bin)), ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return "", err
	}
	if _, err := tw.Write(bin); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.ModTime = epoch
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	config, err := json.Marshal(map[string]any{
		"created":      epoch.Format(time.RFC3339),
		"architecture": "amd64",
		"os":           "linux",
		"config": map[string]any{
			"Entrypoint": []string{"/image-keeper"},
			"User":       "0",
			"Labels": map[string]string{
				"org.opencontainers.image.title":   "image-keeper",
				"org.opencontainers.image.version": version,
				"org.opencontainers.image.source":  "https://github.com/kubelet-imagecache/kubelet-imagecache",
			},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digestOf(raw.Bytes())}},
	})
	if err != nil {
		return "", err
	}
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaTypeManifest,
		"config":        map[string]any{"mediaType": mediaTypeConfig, "digest": digestOf(config), "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": mediaTypeLayer, "digest": digestOf(gz.Bytes()), "size": gz.Len()}},
	})
	if err != nil {
		return "", err
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"manifests": []any{map[string]any{
			"mediaType":   mediaTypeManifest,
			"digest":      digestOf(manifest),
			"size":        len(manifest),
			"annotations": map[string]string{"org.opencontainers.image.ref.name": version},
		}},
	})
	if err != nil {
		return "", err
	}
	if err := os.RemoveAll(out); err != nil {
		return "", err
	}
	blobs := filepath.Join(out, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return "", err
	}
	for _, b := range [][]byte{gz.Bytes(), config, manifest} {
		if err := os.WriteFile(filepath.Join(blobs, strings.TrimPrefix(digestOf(b), "sha256:")), b, 0o644); err != nil {
			return "", err
		}
	}
	if err := os.WriteFile(filepath.Join(out, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(out, "index.json"), index, 0o644); err != nil {
		return "", err
	}
	return digestOf(manifest), nil
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// push uploads the layout's one image to ref and returns the manifest digest.
func push(layout, ref string, plainHTTP bool) (string, error) {
	registry, rest, ok := strings.Cut(ref, "/")
	repo, tag, hasTag := strings.Cut(rest, ":")
	if !ok || !hasTag || !strings.ContainsAny(registry, ".:") || repo == "" {
		return "", fmt.Errorf("--ref %q: want registry/repository:tag, e.g. registry.example.com/image-keeper:v0.2.0", ref)
	}
	scheme := "https"
	if plainHTTP {
		scheme = "http"
	}
	blob := func(d string) ([]byte, error) {
		return os.ReadFile(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
	}
	var index struct{ Manifests []descriptor }
	data, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err == nil {
		err = json.Unmarshal(data, &index)
	}
	if err != nil || len(index.Manifests) != 1 {
		return "", fmt.Errorf("--layout %s: want an OCI layout with one image (%v)", layout, err)
	}
	manifest, err := blob(index.Manifests[0].Digest)
	if err != nil {
		return "", err
	}
	var m struct {
		Config descriptor
		Layers []descriptor
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return "", err
	}
	base := fmt.Sprintf("%s://%s/v2/%s", scheme, registry, repo)
	for _, d := range append(m.Layers, m.Config) {
		data, err := blob(d.Digest)
		if err != nil {
			return "", err
		}
		resp, err := http.Post(base+"/blobs/uploads/", "", nil)
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return "", fmt.Errorf("start upload to %s: %s", base, resp.Status)
		}
		location := resp.Header.Get("Location")
		if !strings.HasPrefix(location, "http") {
			location = scheme + "://" + registry + location
		}
		sep := "?"
		if strings.Contains(location, "?") {
			sep = "&"
		}
		if err := put(location+sep+"digest="+d.Digest, "application/octet-stream", data); err != nil {
			return "", err
		}
	}
	if err := put(base+"/manifests/"+tag, mediaTypeManifest, manifest); err != nil {
		return "", err
	}
	return digestOf(manifest), nil
}

func put(url, contentType string, data []byte) error {
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return errors.New(resp.Status + ": " + string(body))
	}
	return nil
}
