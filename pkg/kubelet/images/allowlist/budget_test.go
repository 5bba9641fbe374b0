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
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBudgetBytes(t *testing.T) {
	assert.Equal(t, int64(26843545), BudgetBytes(256<<20, 10), "10% of 256 MiB, rounded down")
	assert.Equal(t, int64(0), BudgetBytes(0, 10), "unknown capacity")
	assert.Equal(t, int64(1)<<61, BudgetBytes(1<<62, 50), "no overflow on a huge filesystem")
	assert.Equal(t, int64(99), BudgetBytes(199, 50), "exact floor: 199 × 50 / 100")
}

func TestWithinBudget(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sizes  []int64
		budget int64
		want   int
	}{
		{"none", nil, 10, 0},
		{"all fit exactly", []int64{3, 3, 4}, 10, 3},
		{"the first that does not fit ends the prefix", []int64{3, 8, 1}, 10, 1},
		{"a smaller one after it is not held", []int64{6, 6, 1, 1}, 10, 1},
		{"nothing fits", []int64{11, 1}, 10, 0},
		{"zero budget", []int64{1}, 0, 0},
		{"zero-sized images fit a zero budget", []int64{0, 0}, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, WithinBudget(tc.sizes, tc.budget))
		})
	}
}

func TestCompareKept(t *testing.T) {
	assert.Negative(t, CompareKept(0, "sha256:b", 1, "sha256:a"), "the earlier entry first")
	assert.Positive(t, CompareKept(2, "sha256:a", 1, "sha256:b"))
	assert.Negative(t, CompareKept(1, "sha256:a", 1, "sha256:b"), "then the image ID")
	assert.Zero(t, CompareKept(1, "sha256:a", 1, "sha256:a"))
}
