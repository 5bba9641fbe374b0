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

// Package framework runs a throwaway node for end-to-end tests and the demo: a registry on
// loopback, containerd, the patched kubelet in standalone mode and image-keeper, each with its
// own directories under one temporary root, stopped by PID.
package framework

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// ImageSpec describes a test image: the sleeper binary as /pause (or Files), labels, and padding.
type ImageSpec struct {
	// Repository and Tag name it in the registry ("e2e/app", "1").
	Repository, Tag string
	Labels          map[string]string
	// Files, when set, are the first layer instead of the sleeper as /pause (path: content,
	// executable), Links symbolic links in it (path: target), and Entrypoint the image's
	// entrypoint instead of /pause.
	Files      map[string][]byte
	Links      map[string]string
	Entrypoint []string
	// PadBytes adds a layer of that many random (incompressible) bytes.
	PadBytes int
}

// Image is a built and pushed image.
type Image struct {
	// Ref is registry/repository:tag; Digest the manifest digest; ID the config digest (the
	// runtime's image ID).
	Ref, Digest, ID string
	// DigestRef is registry/repository@digest.
	DigestRef string
	Size      int64
	// Layers are the layer blobs' digests.
	Layers []string
}

type blob struct {
	mediaType string
	data      []byte
}

func digestOf(data []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(data)) }

func layer(files map[string][]byte, links map[string]string) (gz []byte, diffID string, err error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		content := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(content)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(content); err != nil {
			return nil, "", err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(links)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Linkname: links[name], Mode: 0o777, ModTime: time.Unix(0, 0), Typeflag: tar.TypeSymlink}); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return out.Bytes(), digestOf(raw.Bytes()), nil
}

// BuildAndPush builds spec around the sleeper binary and pushes it to the registry at addr
// (host:port, plain HTTP) with the Distribution API.
func BuildAndPush(addr string, sleeper []byte, spec ImageSpec) (*Image, error) {
	files, entrypoint := map[string][]byte{"pause": sleeper}, []string{"/pause"}
	if spec.Files != nil {
		files, entrypoint = spec.Files, spec.Entrypoint
	}
	layers := []map[string][]byte{files}
	if spec.PadBytes > 0 {
		pad := make([]byte, spec.PadBytes)
		if _, err := rand.Read(pad); err != nil {
			return nil, err
		}
		layers = append(layers, map[string][]byte{"pad": pad})
	}
	var layerBlobs []blob
	var diffIDs []string
	for i, files := range layers {
		var links map[string]string
		if i == 0 {
			links = spec.Links
		}
		gz, diffID, err := layer(files, links)
		if err != nil {
			return nil, err
		}
		layerBlobs = append(layerBlobs, blob{"application/vnd.oci.image.layer.v1.tar+gzip", gz})
		diffIDs = append(diffIDs, diffID)
	}
	// The title makes every repository:tag a distinct image (its own ID).
	labels := map[string]string{"org.opencontainers.image.title": spec.Repository + ":" + spec.Tag}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": entrypoint, "Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, "Labels": labels},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	descriptors := make([]map[string]any, len(layerBlobs))
	size := int64(len(config))
	for i, b := range layerBlobs {
		descriptors[i] = map[string]any{"mediaType": b.mediaType, "digest": digestOf(b.data), "size": len(b.data)}
		size += int64(len(b.data))
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(config), "size": len(config)},
		"layers":        descriptors,
	})
	for _, b := range append(layerBlobs, blob{"", config}) {
		if err := pushBlob(addr, spec.Repository, b.data); err != nil {
			return nil, fmt.Errorf("push %s: %w", spec.Repository, err)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/v2/%s/manifests/%s", addr, spec.Repository, spec.Tag), bytes.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	if err := do(req, http.StatusCreated); err != nil {
		return nil, fmt.Errorf("push manifest %s:%s: %w", spec.Repository, spec.Tag, err)
	}
	md := digestOf(manifest)
	return &Image{
		Ref:       fmt.Sprintf("%s/%s:%s", addr, spec.Repository, spec.Tag),
		DigestRef: fmt.Sprintf("%s/%s@%s", addr, spec.Repository, md),
		Digest:    md,
		ID:        digestOf(config),
		Size:      size,
		Layers:    layerDigests(layerBlobs),
	}, nil
}

func layerDigests(blobs []blob) []string {
	out := make([]string, len(blobs))
	for i, b := range blobs {
		out[i] = digestOf(b.data)
	}
	return out
}

// registryLogins holds the basic-auth login of registries started with one, by host:port.
var registryLogins sync.Map

func pushBlob(addr, repo string, data []byte) error {
	d := digestOf(data)
	head, _ := http.NewRequest(http.MethodHead, fmt.Sprintf("http://%s/v2/%s/blobs/%s", addr, repo, d), nil)
	if resp, err := send(head); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
	post, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://%s/v2/%s/blobs/uploads/", addr, repo), nil)
	resp, err := send(post)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("start upload: %s", resp.Status)
	}
	location := resp.Header.Get("Location")
	if !strings.HasPrefix(location, "http") {
		location = "http://" + addr + location
	}
	sep := "?"
	if strings.Contains(location, "?") {
		sep = "&"
	}
	req, _ := http.NewRequest(http.MethodPut, location+sep+"digest="+d, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	return do(req, http.StatusCreated)
}

// send sends a request to a test registry, with its login if it has one.
func send(req *http.Request) (*http.Response, error) {
	if login, ok := registryLogins.Load(req.URL.Host); ok {
		user := login.([2]string)
		req.SetBasicAuth(user[0], user[1])
	}
	return http.DefaultClient.Do(req)
}

func do(req *http.Request, want int) error {
	resp, err := send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, body)
	}
	return nil
}

// PushLayout pushes the one image of an OCI layout (hack/image build's output) to the test
// registry at addr as repo:tag, with the registry's login when it has one (hack/image push
// pushes anonymously).
func PushLayout(addr, layout, repo, tag string) error {
	blob := func(d string) ([]byte, error) {
		return os.ReadFile(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
	}
	type descriptor struct {
		MediaType, Digest string
	}
	var index struct{ Manifests []descriptor }
	data, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err == nil {
		err = json.Unmarshal(data, &index)
	}
	if err != nil || len(index.Manifests) != 1 {
		return fmt.Errorf("%s: want an OCI layout with one image (%v)", layout, err)
	}
	manifest, err := blob(index.Manifests[0].Digest)
	if err != nil {
		return err
	}
	var m struct {
		Config descriptor
		Layers []descriptor
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return err
	}
	for _, d := range append(m.Layers, m.Config) {
		data, err := blob(d.Digest)
		if err != nil {
			return err
		}
		if err := pushBlob(addr, repo, data); err != nil {
			return fmt.Errorf("push %s: %w", repo, err)
		}
	}
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/v2/%s/manifests/%s", addr, repo, tag), bytes.NewReader(manifest))
	req.Header.Set("Content-Type", index.Manifests[0].MediaType)
	if err := do(req, http.StatusCreated); err != nil {
		return fmt.Errorf("push manifest %s:%s: %w", repo, tag, err)
	}
	return nil
}
