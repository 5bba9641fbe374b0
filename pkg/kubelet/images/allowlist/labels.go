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

package allowlist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// verboseImageInfoKey is the key of the verbose ImageStatus info map under which containerd and
// CRI-O put a JSON document describing the image.
const verboseImageInfoKey = "info"

// ErrUnknownInfoFormat means the runtime's verbose image info has no shape this code knows, so
// the image's labels cannot be read from it: selectors then match nothing on that runtime.
var ErrUnknownInfoFormat = errors.New("verbose image info has no imageSpec or labels")

// verboseImageInfo is the union of what the runtimes put under info["info"]:
//
//	containerd: {"chainID": "sha256:...", "imageSpec": <OCI image config>}
//	CRI-O:      {"labels": {...}, "imageSpec": <OCI image config>}
//
// The OCI image config keeps its labels at config.Labels.
type verboseImageInfo struct {
	Labels    map[string]string `json:"labels"`
	ImageSpec *struct {
		Config struct {
			Labels map[string]string `json:"Labels"`
		} `json:"config"`
	} `json:"imageSpec"`
}

// LabelsFromVerboseInfo returns the OCI config labels of an image from the Info map of a
// verbose CRI ImageStatus response. An image without labels gives an empty, non-nil map; an
// info map of unknown shape gives an error that wraps ErrUnknownInfoFormat.
func LabelsFromVerboseInfo(info map[string]string) (map[string]string, error) {
	raw, ok := info[verboseImageInfoKey]
	if !ok {
		return nil, fmt.Errorf("%w: no %q key", ErrUnknownInfoFormat, verboseImageInfoKey)
	}
	var parsed verboseImageInfo
	if err := json.Unmarshal([]byte(raw), &parsed); err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrUnknownInfoFormat, err)
	}
	if parsed.ImageSpec == nil && parsed.Labels == nil {
		return nil, ErrUnknownInfoFormat
	}
	// CRI-O's top-level labels are the image's labels as its storage knows them; they equal the
	// config labels for OCI images. Merge both, config first, so neither runtime loses any.
	result := map[string]string{}
	if parsed.ImageSpec != nil {
		for k, v := range parsed.ImageSpec.Config.Labels {
			result[k] = v
		}
	}
	for k, v := range parsed.Labels {
		if _, ok := result[k]; !ok {
			result[k] = v
		}
	}
	return result, nil
}

// ImageStatusProvider is the part of the CRI image service that label look-ups use.
type ImageStatusProvider interface {
	ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error)
}

// LabelReader reads image labels from the runtime's verbose ImageStatus and caches them by image
// ID: an image ID is the digest of the image config, so its labels never change. It holds no
// lock while it calls the runtime. It is safe for concurrent use.
type LabelReader struct {
	statuses ImageStatusProvider

	// lock guards cache.
	lock  sync.Mutex
	cache map[string]map[string]string
}

// NewLabelReader returns a LabelReader that asks statuses.
func NewLabelReader(statuses ImageStatusProvider) *LabelReader {
	return &LabelReader{statuses: statuses, cache: map[string]map[string]string{}}
}

// Cached returns the labels already read for an image ID.
func (r *LabelReader) Cached(imageID string) (map[string]string, bool) {
	r.lock.Lock()
	defer r.lock.Unlock()
	l, ok := r.cache[imageID]
	return l, ok
}

// Read returns an image's labels, from the cache or the runtime. When the runtime's answer has an
// unknown shape, the image counts as unlabelled (cached) and the error wraps
// ErrUnknownInfoFormat; any other error is not cached and means the labels are unknown.
func (r *LabelReader) Read(ctx context.Context, imageID, runtimeHandler string) (map[string]string, error) {
	if l, ok := r.Cached(imageID); ok {
		return l, nil
	}
	resp, err := r.statuses.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: imageID, RuntimeHandler: runtimeHandler}, true)
	if err != nil {
		return nil, fmt.Errorf("verbose ImageStatus of %q: %w", imageID, err)
	}
	if resp.GetImage() == nil {
		return nil, fmt.Errorf("verbose ImageStatus of %q: the runtime does not know the image", imageID)
	}
	imageLabels, err := LabelsFromVerboseInfo(resp.GetInfo())
	if err != nil {
		imageLabels = map[string]string{}
		err = fmt.Errorf("verbose ImageStatus of %q: %w", imageID, err)
	}
	r.lock.Lock()
	r.cache[imageID] = imageLabels
	r.lock.Unlock()
	return imageLabels, err
}

// Forget drops the labels of an image that is no longer on the node.
func (r *LabelReader) Forget(imageID string) {
	r.lock.Lock()
	defer r.lock.Unlock()
	delete(r.cache, imageID)
}
