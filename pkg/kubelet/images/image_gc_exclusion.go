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
	"context"
	"fmt"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// ImageStatusProvider is the part of the CRI image service that image label look-ups use.
type ImageStatusProvider interface {
	ImageStatus(ctx context.Context, image *runtimeapi.ImageSpec, verbose bool) (*runtimeapi.ImageStatusResponse, error)
}

// ImageGCExclusion is the image garbage collection allowlist of the ImageGCExclusion feature:
// images it excludes are never removed by the image garbage collector, on any deletion path.
// A nil *ImageGCExclusion excludes nothing. It is safe for concurrent use.
type ImageGCExclusion struct {
	matcher *ImageMatcher
	// statuses answers verbose ImageStatus calls; used only when the matcher has selectors.
	statuses ImageStatusProvider

	// labelsLock guards labels.
	labelsLock sync.Mutex
	// labels caches each image's OCI config labels by image ID. An image ID is the digest of the
	// image config, so its labels never change; entries go when the image does (Forget).
	labels map[string]map[string]string
}

// NewImageGCExclusion compiles the imageGCExclude patterns and imageGCExcludeSelectors selectors.
// statuses may be nil when there are no selectors.
func NewImageGCExclusion(patterns, selectors []string, statuses ImageStatusProvider) (*ImageGCExclusion, error) {
	matcher, err := NewImageMatcher(patterns, selectors)
	if err != nil {
		return nil, err
	}
	if matcher.HasSelectors() && statuses == nil {
		return nil, fmt.Errorf("%s needs the CRI image service to read image labels", ImageGCExcludeSelectorsFieldName)
	}
	return &ImageGCExclusion{
		matcher:  matcher,
		statuses: statuses,
		labels:   map[string]map[string]string{},
	}, nil
}

// Matcher returns the compiled allowlist.
func (e *ImageGCExclusion) Matcher() *ImageMatcher {
	if e == nil {
		return nil
	}
	return e.matcher
}

// Excludes returns the allowlist entry that protects an image from garbage collection, or ""
// when none does. Labels are looked up, once per image ID, only when selectors are configured
// and no pattern matched. An error means the image's labels could not be read: the caller must
// keep the image for now, since an image must not be deleted because a look-up failed.
// The result depends only on its arguments, so callers may cache it per image and names.
func (e *ImageGCExclusion) Excludes(ctx context.Context, imageID string, repoTags, repoDigests []string) (string, error) {
	if e == nil {
		return "", nil
	}
	if entry := e.matcher.MatchReferences(imageID, repoTags, repoDigests); entry != "" || !e.matcher.HasSelectors() {
		return entry, nil
	}
	imageLabels, err := e.imageLabels(ctx, imageID)
	if err != nil {
		return "", err
	}
	return e.matcher.MatchLabels(imageLabels), nil
}

// Forget drops what is cached about an image that is no longer on the node.
func (e *ImageGCExclusion) Forget(imageID string) {
	if e == nil {
		return
	}
	e.labelsLock.Lock()
	defer e.labelsLock.Unlock()
	delete(e.labels, imageID)
}

// imageLabels returns the image's labels from the cache or the runtime. Labels in a format this
// code does not know count as no labels, cached and logged once; a failed call is not cached.
func (e *ImageGCExclusion) imageLabels(ctx context.Context, imageID string) (map[string]string, error) {
	e.labelsLock.Lock()
	defer e.labelsLock.Unlock()
	if cached, ok := e.labels[imageID]; ok {
		return cached, nil
	}
	resp, err := e.statuses.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: imageID}, true)
	if err != nil {
		return nil, fmt.Errorf("verbose ImageStatus of %q: %w", imageID, err)
	}
	if resp.GetImage() == nil {
		return nil, fmt.Errorf("verbose ImageStatus of %q: the runtime does not know the image", imageID)
	}
	imageLabels, err := ImageLabelsFromVerboseInfo(resp.GetInfo())
	if err != nil {
		klog.FromContext(ctx).V(4).Info("Image labels are unknown, treating the image as unlabelled for imageGCExcludeSelectors", "imageID", imageID, "err", err)
		imageLabels = map[string]string{}
	}
	e.labels[imageID] = imageLabels
	return imageLabels, nil
}
