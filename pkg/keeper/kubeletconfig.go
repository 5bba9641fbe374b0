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
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"sigs.k8s.io/yaml"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/configfile"
)

const (
	kubeletConfigAPIVersion = "kubelet.config.k8s.io/v1beta1"
	kubeletConfigKind       = "KubeletConfiguration"
	// kubeletDropInExtension is the extension of the kubelet's --config-dir files.
	kubeletDropInExtension = ".conf"
)

// kubeletConfig is the part of a KubeletConfiguration that image-keeper reads.
type kubeletConfig struct {
	APIVersion              string          `json:"apiVersion"`
	Kind                    string          `json:"kind"`
	FeatureGates            map[string]bool `json:"featureGates"`
	ImageGCExclude          []string        `json:"imageGCExclude"`
	ImageGCExcludeSelectors []string        `json:"imageGCExcludeSelectors"`
	// ImageGCExcludeBudgetPercent is nil when unset (no budget).
	ImageGCExcludeBudgetPercent *int32 `json:"imageGCExcludeBudgetPercent"`
	// ImagePullCredentialsVerificationPolicy decides whether a pod may use an image the kubelet
	// did not pull with that pod's credentials (KEP-2535).
	ImagePullCredentialsVerificationPolicy string `json:"imagePullCredentialsVerificationPolicy"`
	// PreloadedImagesVerificationAllowlist names the repositories NeverVerifyAllowlistedImages
	// lets any pod use ("registry/path", or a prefix "registry/path/*").
	PreloadedImagesVerificationAllowlist []string `json:"preloadedImagesVerificationAllowlist"`
}

// KubeletAllowlist is the kubelet's image garbage collection allowlist, as the kubelet reads it
// from its config file and drop-ins.
type KubeletAllowlist struct {
	// Patterns and Selectors are imageGCExclude and imageGCExcludeSelectors, as written.
	Patterns, Selectors []string
	// GateOn is the ImageGCExclusion feature gate; without it the kubelet keeps nothing.
	GateOn bool
	// BudgetPercent is imageGCExcludeBudgetPercent, 0 when unset (no budget).
	BudgetPercent int32
}

// ReadKubeletAllowlist reads the allowlist from the kubelet's config file and drop-in directory
// (dir may be empty), merged as the kubelet merges them.
func ReadKubeletAllowlist(file, dir string) (*KubeletAllowlist, error) {
	kc, err := readKubeletConfig(file, dir)
	if err != nil {
		return nil, err
	}
	a := &KubeletAllowlist{Patterns: kc.ImageGCExclude, Selectors: kc.ImageGCExcludeSelectors, GateOn: kc.FeatureGates["ImageGCExclusion"]}
	if kc.ImageGCExcludeBudgetPercent != nil {
		a.BudgetPercent = *kc.ImageGCExcludeBudgetPercent
	}
	return a, nil
}

// readKubeletConfig reads the kubelet's config file and its drop-in directory as the kubelet
// does (cmd/kubelet/app mergeKubeletConfigurations): every "*.conf" file under dir, in the
// order filepath.WalkDir visits them (lexical, subdirectories included), must be a v1beta1
// KubeletConfiguration and is applied as a JSON merge patch (RFC 7386: a list replaces the
// list before it). The kubelet applies command-line flags last; image-keeper cannot see them,
// which is why the shipped deployment sets the allowlist in a drop-in, not with flags.
func readKubeletConfig(file, dir string) (*kubeletConfig, error) {
	base, err := readKubeletConfigJSON(file)
	if err != nil {
		return nil, err
	}
	if dir != "" {
		err := filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if entry.IsDir() || filepath.Ext(entry.Name()) != kubeletDropInExtension {
				return nil
			}
			dropIn, err := readKubeletConfigJSON(path)
			if err != nil {
				return err
			}
			if base, err = jsonpatch.MergePatch(base, dropIn); err != nil {
				return fmt.Errorf("kubelet config drop-in %s: %w", path, err)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("kubelet config directory %s: %w", dir, err)
		}
	}
	var kc kubeletConfig
	if err := json.Unmarshal(base, &kc); err != nil {
		return nil, fmt.Errorf("kubelet config %s: %v", file, err)
	}
	// The kubelet's own check (pkg/kubelet/apis/config/validation), in its words: a config the
	// kubelet refuses must not look fine here. The allowlist's entries are checked where they
	// are compiled.
	if p := kc.ImageGCExcludeBudgetPercent; p != nil && (*p < 1 || *p > 100) {
		return nil, fmt.Errorf("kubelet config %s: invalid configuration: imageGCExcludeBudgetPercent %d must be between 1 and 100, inclusive (100, the default, means no limit)", file, *p)
	}
	return &kc, nil
}

// readKubeletConfigJSON reads one KubeletConfiguration file (YAML or JSON) as JSON. Not strict:
// a KubeletConfiguration has many fields image-keeper does not read.
func readKubeletConfigJSON(path string) ([]byte, error) {
	data, _, err := configfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("kubelet config: %w", err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("kubelet config %s: %v", path, err)
	}
	var head kubeletConfig
	if err := json.Unmarshal(js, &head); err != nil {
		return nil, fmt.Errorf("kubelet config %s: %v", path, err)
	}
	if head.Kind != kubeletConfigKind || head.APIVersion != kubeletConfigAPIVersion {
		return nil, fmt.Errorf("kubelet config %s: apiVersion %q, kind %q: want apiVersion: %s and kind: %s", path, head.APIVersion, head.Kind, kubeletConfigAPIVersion, kubeletConfigKind)
	}
	return js, nil
}
