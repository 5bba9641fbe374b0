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
	"cmp"
	"strings"
)

// BudgetBytes is what imageGCExcludeBudgetPercent lets the unused images an allowlist keeps hold
// on an image filesystem of capacity bytes, rounded down. It does not overflow for any capacity.
func BudgetBytes(capacity int64, percent int) int64 {
	p := int64(percent)
	return capacity/100*p + capacity%100*p/100
}

// WithinBudget returns how many of the images, whose sizes are given in rank order, the budget
// holds: the longest prefix whose sizes add up to at most budget bytes. The kubelet ranks the
// unused allowlisted images most recently used first; the images after the prefix are garbage
// collected like any other image, least recently used first.
func WithinBudget(sizes []int64, budget int64) int {
	var held int64
	for i, size := range sizes {
		if held+size > budget {
			return i
		}
		held += size
	}
	return len(sizes)
}

// CompareKept orders two unused images that the allowlist keeps and that were used equally
// recently (after a kubelet restart, every image not used since), as the budget and the eviction
// rule rank them: the image kept by the earlier entry first (pos is the entry's Position), then
// by image ID. It returns a negative number when a ranks before b, and depends on nothing a
// restart loses.
func CompareKept(posA int, idA string, posB int, idB string) int {
	if c := cmp.Compare(posA, posB); c != 0 {
		return c
	}
	return strings.Compare(idA, idB)
}
