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

package images

import (
	"encoding/json"
	"errors"
	"fmt"
)

// verboseImageInfoKey is the key of the verbose ImageStatus info map under which containerd and
// CRI-O put a JSON document describing the image.
const verboseImageInfoKey = "info"

// errUnknownImageInfo means the runtime's verbose image info has no shape this code knows.
var errUnknownImageInfo = errors.New("verbose image info has no imageSpec or labels")

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

// ImageLabelsFromVerboseInfo returns the OCI config labels of an image from the Info map of a
// verbose CRI ImageStatus response. An image without labels gives an empty, non-nil map; an
// info map of unknown shape gives an error.
func ImageLabelsFromVerboseInfo(info map[string]string) (map[string]string, error) {
	raw, ok := info[verboseImageInfoKey]
	if !ok {
		return nil, fmt.Errorf("verbose image info has no %q key", verboseImageInfoKey)
	}
	var parsed verboseImageInfo
	if err := json.Unmarshal([]byte(raw), &parsed); err != nil {
		return nil, fmt.Errorf("verbose image info is not JSON: %w", err)
	}
	if parsed.ImageSpec == nil && parsed.Labels == nil {
		return nil, errUnknownImageInfo
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
