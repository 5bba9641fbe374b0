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
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	"k8s.io/klog/v2"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/configfile"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/kubelet/images/allowlist"
)

const (
	// APIVersion and Kind identify image-keeper's config file.
	APIVersion = "imagekeeper.kubelet-imagecache.io/v1alpha1"
	Kind       = "ImageKeeperConfiguration"
)

// File is image-keeper's config file.
//
//	apiVersion: imagekeeper.kubelet-imagecache.io/v1alpha1
//	kind: ImageKeeperConfiguration
//	images:
//	  - registry.k8s.io/pause:3.10
//	  - ghcr.io/acme/agent@sha256:<hex>
type File struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Images are concrete references (a tag or a digest) to keep present.
	Images []string `json:"images,omitempty"`
}

// Sources are where the wanted images come from; Load turns them into Wanted.
type Sources struct {
	// ConfigFile is image-keeper's config file ("" for none).
	ConfigFile string
	// Images are the --image flags.
	Images []string
	// KubeletConfigFile is a KubeletConfiguration whose imageGCExclude adds wanted images and
	// whose allowlist decides "protected" ("" for none).
	KubeletConfigFile string
	// KubeletConfigDir is the kubelet's --config-dir: its "*.conf" drop-ins are merged onto
	// KubeletConfigFile as the kubelet merges them ("" for none).
	KubeletConfigDir string
	// Holder says a holder pod protects the wanted images too (holder mode, package holder):
	// what the kubelet's allowlist does not keep is then no reason for a warning.
	Holder bool
}

// WantedImage is one image to keep present.
type WantedImage struct {
	// Reference is the normalized reference: "docker.io/library/nginx:1.27".
	Reference string
	// Digest is true for "repo@sha256:..." references, false for "repo:tag".
	Digest bool
	// Source says where it was asked for: "config", "flag" or "kubelet".
	Source string
}

// Wanted is the loaded set of wanted images and the kubelet's allowlist.
type Wanted struct {
	Images []WantedImage
	// Allowlist is the kubelet's compiled imageGCExclude and imageGCExcludeSelectors, nil without
	// a kubelet config.
	Allowlist *allowlist.Allowlist
	// AllowlistPatterns and AllowlistSelectors are the kubelet config's entries, as written.
	AllowlistPatterns, AllowlistSelectors []string
	// KubeletConfigMissing says why the kubelet config could not be read yet ("" when read): at
	// first boot it may appear after image-keeper starts, and is read when it does.
	KubeletConfigMissing string
	// AllowlistOff is set when the kubelet config lists entries but the ImageGCExclusion feature
	// gate is not on: then the kubelet protects nothing.
	AllowlistOff bool
	// NotPullable are kubelet allowlist entries that only protect (wildcards, bare repositories,
	// image IDs, selectors).
	NotPullable []string
	// Holder is Sources.Holder.
	Holder bool
	// PullCredentialsPolicy is the kubelet's imagePullCredentialsVerificationPolicy (its default
	// when unset), "" without a kubelet config.
	PullCredentialsPolicy string
	// PreloadedAllowlist is the kubelet's preloadedImagesVerificationAllowlist.
	PreloadedAllowlist []string
	// ConfigData is image-keeper's config file as it was read and loaded (nil without one):
	// what LastGood saves.
	ConfigData []byte
}

// names returns the image's reference as the repo tags or repo digests a runtime would report.
func (img WantedImage) names() (repoTags, repoDigests []string) {
	if img.Digest {
		return nil, []string{img.Reference}
	}
	return []string{img.Reference}, nil
}

// AllowlistEntry returns the kubelet allowlist entry that protects the image by its reference
// alone ("" if none does; label selectors need the pulled image and are not consulted).
func (w *Wanted) AllowlistEntry(img WantedImage) string {
	tags, digests := img.names()
	return w.Allowlist.MatchReferences("", tags, digests)
}

// Warning is something about the wanted images an operator should fix. Message is a constant
// log message; KeysAndValues say which image or entry.
type Warning struct {
	Message       string
	KeysAndValues []any
}

// Warnings says which wanted images the kubelet's garbage collection would fight over (deleted
// by the kubelet, pulled again by image-keeper), and which allowlist entries cannot be pulled.
func (w *Wanted) Warnings() []Warning {
	var out []Warning
	if len(w.NotPullable) > 0 {
		out = append(out, Warning{"Kubelet allowlist entries protect images but cannot be pulled; image-keeper skips them", []any{"entries", w.NotPullable}})
	}
	if w.Allowlist == nil || w.Holder {
		return out // nothing to compare with, or a holder keeps what the allowlist does not
	}
	if w.AllowlistOff {
		return append(out, Warning{"WARNING: the kubelet config has an allowlist but the ImageGCExclusion feature gate is off: the kubelet will garbage-collect every wanted image", nil})
	}
	if w.Allowlist.HasSelectors() {
		return out // a selector may protect any image, once its labels are known
	}
	for _, img := range w.Images {
		if w.AllowlistEntry(img) == "" {
			out = append(out, Warning{"WARNING: wanted image is not protected by the kubelet's allowlist; the kubelet's image garbage collection will delete it and image-keeper will pull it again", []any{"image", img.Reference}})
		}
	}
	return out
}

// LogWarnings logs Warnings, at start and after each reload.
func (w *Wanted) LogWarnings(logger klog.Logger) {
	for _, warning := range w.Warnings() {
		logger.Info(warning.Message, warning.KeysAndValues...)
	}
}

// Load reads every source. Each error names the file or flag, the entry and the reason.
func Load(src Sources) (*Wanted, error) {
	w := &Wanted{Holder: src.Holder}
	seen := map[string]string{}
	add := func(source, where string, entries []string) error {
		var errs []error
		local := map[string]int{}
		for i, entry := range entries {
			img, err := parseWanted(entry, source)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s[%d] %q: %w", where, i, bounded(entry), err))
				continue
			}
			if j, dup := local[img.Reference]; dup {
				errs = append(errs, fmt.Errorf("%s[%d] %q: duplicate of %s[%d]; list each image once", where, i, bounded(entry), where, j))
				continue
			}
			local[img.Reference] = i
			if _, dup := seen[img.Reference]; dup {
				continue // asked for by another source too: keep the first
			}
			seen[img.Reference] = source
			w.Images = append(w.Images, img)
		}
		return errors.Join(errs...)
	}

	if src.ConfigFile != "" {
		data, f, err := readConfigFile(src.ConfigFile)
		if err != nil {
			return nil, err
		}
		w.ConfigData = data
		if err := add("config", src.ConfigFile+": images", f.Images); err != nil {
			return nil, err
		}
	}
	if err := add("flag", "--image", src.Images); err != nil {
		return nil, err
	}
	if src.KubeletConfigDir != "" && src.KubeletConfigFile == "" {
		return nil, fmt.Errorf("--kubelet-config-dir %s: needs --kubelet-config, the file its drop-ins are merged onto", src.KubeletConfigDir)
	}
	if src.KubeletConfigFile != "" {
		if _, err := os.Stat(src.KubeletConfigFile); errors.Is(err, fs.ErrNotExist) {
			// First boot: the kubelet's config may be written after image-keeper starts. Keep
			// what the other sources ask for; the file's directory is watched, so it is read
			// when it appears.
			w.KubeletConfigMissing = err.Error()
			return finish(w, true)
		}
		kc, err := readKubeletConfig(src.KubeletConfigFile, src.KubeletConfigDir)
		if err != nil {
			return nil, err
		}
		matcher, err := allowlist.Compile(kc.ImageGCExclude, kc.ImageGCExcludeSelectors)
		if err != nil {
			return nil, fmt.Errorf("kubelet config %s: %w", src.KubeletConfigFile, err)
		}
		w.Allowlist = matcher
		w.AllowlistPatterns, w.AllowlistSelectors = kc.ImageGCExclude, kc.ImageGCExcludeSelectors
		w.AllowlistOff = !matcher.Empty() && !kc.FeatureGates["ImageGCExclusion"]
		w.PullCredentialsPolicy = cmp.Or(kc.ImagePullCredentialsVerificationPolicy, DefaultPullCredentialsPolicy)
		w.PreloadedAllowlist = kc.PreloadedImagesVerificationAllowlist
		var pullable []string
		for _, entry := range kc.ImageGCExclude {
			if p, err := allowlist.ParseExtendedPattern(entry); err == nil && p.Pullable() {
				pullable = append(pullable, entry)
			} else {
				w.NotPullable = append(w.NotPullable, entry)
			}
		}
		for _, s := range kc.ImageGCExcludeSelectors {
			w.NotPullable = append(w.NotPullable, "selector "+s)
		}
		if err := add("kubelet", src.KubeletConfigFile+": imageGCExclude", pullable); err != nil {
			return nil, err
		}
	}
	return finish(w, false)
}

// DefaultPullCredentialsPolicy is the kubelet's imagePullCredentialsVerificationPolicy when
// unset: an image the kubelet did not pull (image-keeper's) counts as preloaded, which any pod
// may use without pull secrets.
const DefaultPullCredentialsPolicy = "NeverVerifyPreloadedImages"

// MaxWantedImages caps the wanted list: state, status and metrics grow with it (64 MiB RSS at
// 20,000, docs/bench/image-keeper-scale.md).
const MaxWantedImages = 50000

// finish sorts the wanted images; none at all is an error unless the kubelet config, which may
// name them, is still to come.
func finish(w *Wanted, waiting bool) (*Wanted, error) {
	if len(w.Images) > MaxWantedImages {
		return nil, fmt.Errorf("%d images to keep: at most %d; a node's cache is meant for the images its pods need, not a registry mirror", len(w.Images), MaxWantedImages)
	}
	if len(w.Images) == 0 && !waiting {
		return nil, errors.New("no images to keep: list them under images: in --config, with --image, or as tags and digests in the kubelet config's imageGCExclude (--kubelet-config)")
	}
	sort.SliceStable(w.Images, func(i, j int) bool { return w.Images[i].Reference < w.Images[j].Reference })
	return w, nil
}

// parseWanted accepts only what a runtime can pull: a repository with a tag or a digest.
func parseWanted(entry, source string) (WantedImage, error) {
	p, err := allowlist.ParseExtendedPattern(entry)
	if err != nil {
		return WantedImage{}, err
	}
	switch {
	case p.Pullable():
		return WantedImage{Reference: p.String(), Digest: p.Kind == allowlist.PatternDigest, Source: source}, nil
	case strings.Contains(entry, "*"):
		return WantedImage{}, errors.New("a pattern with '*' cannot be pulled; give one repository with a tag or a digest")
	case p.Kind == allowlist.PatternRepository:
		return WantedImage{}, fmt.Errorf("a repository without a tag or digest cannot be pulled; write %s:<tag> or %s@sha256:<hex>", entry, entry)
	}
	return WantedImage{}, fmt.Errorf("a %s pattern cannot be pulled; give a tag or a digest", p.Kind)
}

func readConfigFile(path string) ([]byte, *File, error) {
	data, _, err := configfile.Read(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	f, err := decodeStrict(data)
	if err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", path, err)
	}
	if f.APIVersion != APIVersion || f.Kind != Kind {
		return nil, nil, fmt.Errorf("config %s: apiVersion %q, kind %q: want apiVersion: %s and kind: %s", path, f.APIVersion, f.Kind, APIVersion, Kind)
	}
	return data, f, nil
}

// decodeStrict decodes one YAML document into File the way Kubernetes decodes strictly: field
// names are case-sensitive ("Images" is not "images"), unknown and duplicate fields are errors,
// and a second document is an error rather than silently ignored.
func decodeStrict(data []byte) (*File, error) {
	docs, err := countDocuments(data)
	if err != nil {
		return nil, err
	}
	if docs > 1 {
		return nil, fmt.Errorf("%d YAML documents; want one (images in a second document would not be kept)", docs)
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, err
	}
	var f File
	strictErrs, err := kjson.UnmarshalStrict(js, &f)
	if err != nil {
		return nil, err
	}
	if len(strictErrs) > 0 {
		return nil, errors.Join(strictErrs...)
	}
	return &f, nil
}

// countDocuments counts the YAML documents of data that hold something, as a YAML parser reads
// them: a separator with a comment or a value on its line ("--- # x", "--- {images: [a]}") and
// an explicit end ("...") count as they should; empty and comment-only documents do not.
func countDocuments(data []byte) (int, error) {
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	docs := 0
	for {
		var doc yamlv3.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return 0, err
		}
		if len(doc.Content) > 0 && doc.Content[0].Tag != "!!null" {
			docs++
		}
	}
}

// bounded shortens an entry quoted in an error, so that a huge one is not echoed whole.
func bounded(entry string) string {
	const maxQuoted = 256
	if len(entry) <= maxQuoted {
		return entry
	}
	return fmt.Sprintf("%s...(%d more bytes)", entry[:maxQuoted], len(entry)-maxQuoted)
}
