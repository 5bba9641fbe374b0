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
	"errors"
	"fmt"
)

// Allowlist is the whole image garbage collection allowlist: the imageGCExclude patterns, the
// imageGCExcludeSelectors label selectors, and the label look-ups the selectors need. A nil
// *Allowlist keeps nothing. It is safe for concurrent use.
type Allowlist struct {
	matcher   *Matcher
	selectors *Selectors
	// labels is nil when there are no selectors, or when the Allowlist was made by Compile.
	labels *LabelReader
}

// Compile compiles imageGCExclude patterns, in the language of ParseExtendedPattern, and
// imageGCExcludeSelectors selectors without a label reader, for tools that read labels
// themselves. Every invalid entry of both lists is reported in one *MatcherError, patterns first.
func Compile(patterns, selectors []string) (*Allowlist, error) {
	matcher, patternsErr := compilePatterns(patterns)
	compiled, selectorsErr := NewSelectors(selectors)
	if patternsErr != nil || selectorsErr != nil {
		var errs []error
		for _, err := range []error{patternsErr, selectorsErr} {
			if matcherErr, ok := errors.AsType[*MatcherError](err); ok {
				errs = append(errs, matcherErr.Errs...)
			} else if err != nil {
				errs = append(errs, err)
			}
		}
		return nil, &MatcherError{Errs: errs}
	}
	return &Allowlist{matcher: matcher, selectors: compiled}, nil
}

// New compiles the imageGCExclude patterns and imageGCExcludeSelectors selectors; statuses
// answers the label look-ups of the selectors and may be nil when there are none.
func New(patterns, selectors []string, statuses ImageStatusProvider) (*Allowlist, error) {
	a, err := Compile(patterns, selectors)
	if err != nil {
		return nil, err
	}
	if a.HasSelectors() {
		if statuses == nil {
			return nil, fmt.Errorf("%s needs the CRI image service to read image labels", ExcludeSelectorsFieldName)
		}
		a.labels = NewLabelReader(statuses)
	}
	return a, nil
}

// Matcher returns the compiled patterns.
func (a *Allowlist) Matcher() *Matcher {
	if a == nil {
		return nil
	}
	return a.matcher
}

// Labels returns the label reader of the selectors, nil when there is none.
func (a *Allowlist) Labels() *LabelReader {
	if a == nil {
		return nil
	}
	return a.labels
}

// Empty reports whether the allowlist has no entries at all.
func (a *Allowlist) Empty() bool {
	return a == nil || (a.matcher.Empty() && a.selectors.Len() == 0)
}

// HasSelectors reports whether matching can depend on image labels.
func (a *Allowlist) HasSelectors() bool {
	return a != nil && a.selectors.Len() > 0
}

// Summary counts the entries of each kind, as key/value pairs for a structured log line.
func (a *Allowlist) Summary() []any {
	if a == nil {
		return nil
	}
	return append(a.matcher.Summary(), "selectors", a.selectors.Len())
}

// Position ranks an entry that keeps an image: its position among the patterns, or, for a
// selector, the number of patterns plus its position among the selectors (a pattern keeps an
// image before any selector is consulted). It returns -1 for an entry of neither list.
func (a *Allowlist) Position(entry string) int {
	if a == nil {
		return -1
	}
	if pos := a.matcher.Position(entry); pos >= 0 {
		return pos
	}
	if pos := a.selectors.Position(entry); pos >= 0 {
		return len(a.matcher.entries) + pos
	}
	return -1
}

// Entry returns the entry at a Position, "" for a position that is not one (-1).
func (a *Allowlist) Entry(pos int) string {
	if a == nil || pos < 0 {
		return ""
	}
	if n := len(a.matcher.entries); pos >= n && pos-n < a.selectors.Len() {
		return a.selectors.entries[pos-n].entry
	}
	return a.matcher.Entry(pos)
}

// MatchPosition returns the Position of the earliest pattern that matches the image by its ID, a
// repo tag or a repo digest, or -1 if none does; see Matcher.MatchPosition.
func (a *Allowlist) MatchPosition(imageID string, repoTags, repoDigests []string) int {
	if a == nil {
		return -1
	}
	return a.matcher.MatchPosition(imageID, repoTags, repoDigests)
}

// MatchReferences returns the earliest pattern that matches the image by its ID, a repo tag or a
// repo digest, or "" if none does; see Matcher.MatchReferences.
func (a *Allowlist) MatchReferences(imageID string, repoTags, repoDigests []string) string {
	if a == nil {
		return ""
	}
	return a.matcher.MatchReferences(imageID, repoTags, repoDigests)
}

// MatchLabels returns the first selector that matches the image's labels, or "".
func (a *Allowlist) MatchLabels(imageLabels map[string]string) string {
	if a == nil {
		return ""
	}
	return a.selectors.MatchLabels(imageLabels)
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
	return a.selectors.MatchLabels(imageLabels), err
}

// Forget drops what is cached about an image that is no longer on the node.
func (a *Allowlist) Forget(imageID string) {
	if a == nil || a.labels == nil {
		return
	}
	a.labels.Forget(imageID)
}
