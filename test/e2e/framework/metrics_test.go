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

package framework

import "testing"

func TestMetricSum(t *testing.T) {
	const text = `# HELP image_keeper_pulls_total Pulls by result.
# TYPE image_keeper_pulls_total counter
image_keeper_pulls_total{result="failure"} 2
image_keeper_pulls_total{result="success"} 5
# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 17
`
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"image_keeper_pulls_total", nil, 7},
		{"image_keeper_pulls_total", []string{"result", "success"}, 5},
		{"image_keeper_pulls_total", []string{"result", "other"}, 0},
		{"go_goroutines", nil, 17},
		{"absent_total", nil, 0},
	} {
		got, err := MetricSum(text, tc.name, tc.labels...)
		if err != nil || got != tc.want {
			t.Errorf("MetricSum(%s, %q) = %v, %v; want %v", tc.name, tc.labels, got, err, tc.want)
		}
	}
	if _, err := MetricSum("not { metrics", "x"); err == nil {
		t.Error("MetricSum parsed garbage")
	}
	if _, err := MetricSum(text, "go_goroutines", "odd"); err == nil {
		t.Error("MetricSum took an odd label list")
	}
}
