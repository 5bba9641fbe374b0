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
	"fmt"
)

// Allowlist is a compiled allowlist with the label look-ups its selectors need. A nil *Allowlist
// keeps nothing. It is safe for concurrent use.
type Allowlist struct {
	matcher *Matcher
	// labels is nil when there are no selectors.
	labels *LabelReader
}

// New compiles the imageGCExclude patterns and imageGCExcludeSelectors selectors; statuses
// answers the label look-ups of the selectors and may be nil when there are none.
func New(patterns, selectors []string, statuses ImageStatusProvider) (*Allowlist, error) {
	matcher, err := NewMatcher(patterns, selectors)
	if err != nil {
		return nil, err
	}
	a := &Allowlist{matcher: matcher}
	if matcher.HasSelectors() {
		if statuses == nil {
			return nil, fmt.Errorf("%s needs the CRI image service to read image labels", ExcludeSelectorsFieldName)
		}
		a.labels = NewLabelReader(statuses)
	}
	return a, nil
}

// Matcher returns the compiled patterns and selectors.
func (a *Allowlist) Matcher() *Matcher {
	if a == nil {
		return nil
	}
	return a.matcher
}

// Labels returns the label reader of the selectors, nil when there are none.
func (a *Allowlist) Labels() *LabelReader {
	if a == nil {
		return nil
	}
	return a.labels
}

// Excludes returns the entry that keeps an image, or "" when none does. Labels are read (once
// per image ID) only when selectors are configured and no pattern matched. An error means the
// labels could not be read: the caller must keep the image for now. An image whose verbose info
// has an unknown shape counts as unlabelled, and the error wraps ErrUnknownInfoFormat.
func (a *Allowlist) Excludes(ctx context.Context, imageID, runtimeHandler string, repoTags, repoDigests []string) (string, error) {
	if a == nil {
		return "", nil
	}
	if entry := a.matcher.MatchReferences(imageID, repoTags, repoDigests); entry != "" || a.labels == nil {
		return entry, nil
	}
	imageLabels, err := a.labels.Read(ctx, imageID, runtimeHandler)
	return a.matcher.MatchLabels(imageLabels), err
}

// Forget drops what is cached about an image that is no longer on the node.
func (a *Allowlist) Forget(imageID string) {
	if a == nil || a.labels == nil {
		return
	}
	a.labels.Forget(imageID)
}
