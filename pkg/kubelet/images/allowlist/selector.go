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
	"errors"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// ExcludeSelectorsFieldName is the KubeletConfiguration field whose entries NewSelectors
// compiles; errors name it.
const ExcludeSelectorsFieldName = "imageGCExcludeSelectors"

// Selectors are compiled imageGCExcludeSelectors: label selectors over an image's OCI config
// labels, which the kubelet reads from the container runtime's verbose ImageStatus (labels.go).
// They are immutable and safe for concurrent use.
type Selectors struct {
	entries []selectorEntry
}

type selectorEntry struct {
	entry    string
	selector labels.Selector
}

// NewSelectors compiles imageGCExcludeSelectors entries. Every invalid entry is reported, each
// as `imageGCExcludeSelectors[<index>] "<entry>": <reason>`, in a *MatcherError. The list is a
// set: a selector that means the same as another (terms in another order) is an error.
func NewSelectors(selectors []string) (*Selectors, error) {
	s := &Selectors{}
	var errs []error
	seen := map[string]int{}
	for i, entry := range selectors {
		sel, err := ParseSelector(entry)
		if err == nil {
			err = duplicate(seen, sel.String(), selectors, ExcludeSelectorsFieldName, i)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d] %q: %w", ExcludeSelectorsFieldName, i, quoteBounded(entry), err))
			continue
		}
		s.entries = append(s.entries, selectorEntry{entry: entry, selector: sel})
	}
	if len(errs) > 0 {
		return nil, &MatcherError{Errs: errs}
	}
	return s, nil
}

// Len returns the number of selectors.
func (s *Selectors) Len() int {
	if s == nil {
		return 0
	}
	return len(s.entries)
}

// Position returns the position of entry among the selectors, or -1 if it is not one of them.
func (s *Selectors) Position(entry string) int {
	if s == nil {
		return -1
	}
	for i, e := range s.entries {
		if e.entry == entry {
			return i
		}
	}
	return -1
}

// MatchLabels returns the first selector that matches the image's labels, or "".
func (s *Selectors) MatchLabels(imageLabels map[string]string) string {
	if s == nil {
		return ""
	}
	for _, e := range s.entries {
		if e.selector.Matches(labels.Set(imageLabels)) {
			return e.entry
		}
	}
	return ""
}

// ParseSelector parses one imageGCExcludeSelectors entry, a label selector over the image's OCI
// config labels. A selector must require some label to be present: one made only of negative
// terms ("!deprecated", "tier!=dev") would keep every unlabelled image.
func ParseSelector(entry string) (labels.Selector, error) {
	if strings.TrimSpace(entry) == "" {
		return nil, errors.New("must not be empty: an empty selector would keep every image")
	}
	selector, err := labels.Parse(entry)
	if err != nil {
		return nil, err
	}
	requirements, _ := selector.Requirements()
	positive := false
	for _, r := range requirements {
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In, selection.Exists, selection.GreaterThan, selection.LessThan:
			positive = true
		}
	}
	if !positive {
		return nil, errors.New("requires no label to be present, so it would keep every image without those labels; add a term such as key=value, key in (a,b) or key")
	}
	if _, ok := satisfyingLabels(requirements); !ok {
		return nil, errors.New("selects no image: its requirements contradict each other")
	}
	return selector, nil
}

// satisfyingLabels returns a label set that meets every requirement, if there is one.
// Requirements on different keys are independent, so each key is solved on its own: absent, one
// of the values its requirements name (or a number next to one), or a value none of them names.
func satisfyingLabels(requirements labels.Requirements) (labels.Set, bool) {
	byKey := map[string][]labels.Requirement{}
	for _, r := range requirements {
		byKey[r.Key()] = append(byKey[r.Key()], r)
	}
	result := labels.Set{}
	for key, reqs := range byKey {
		unnamed := "x"
		candidates := []labels.Set{{}}
		for _, r := range reqs {
			for _, v := range r.ValuesUnsorted() {
				candidates = append(candidates, labels.Set{key: v})
				for len(unnamed) <= len(v) {
					unnamed += "x"
				}
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					candidates = append(candidates, labels.Set{key: strconv.FormatInt(n+1, 10)}, labels.Set{key: strconv.FormatInt(n-1, 10)})
				}
			}
		}
		candidates = append(candidates, labels.Set{key: unnamed})
		found := false
		for _, set := range candidates {
			if allMatch(reqs, set) {
				if v, ok := set[key]; ok {
					result[key] = v
				}
				found = true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return result, true
}

func allMatch(requirements []labels.Requirement, set labels.Set) bool {
	for _, r := range requirements {
		if !r.Matches(set) {
			return false
		}
	}
	return true
}
