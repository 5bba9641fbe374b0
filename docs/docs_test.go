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

// Package docs tests that the examples in this directory do what they say: every row of the
// allowlist tables runs through the kubelet's own matcher, and every kubelet configuration
// snippet compiles.
package docs

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/kubelet/images/allowlist"
)

// table returns the rows of the markdown table whose header starts with header, as cells with
// their backticked values: each cell's `…` spans, or "(none)".
func table(t *testing.T, doc, header string) [][][]string {
	t.Helper()
	lines := strings.Split(doc, "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, header) {
			continue
		}
		var rows [][][]string
		for _, row := range lines[i+2:] {
			if !strings.HasPrefix(row, "|") {
				break
			}
			var cells [][]string
			for _, cell := range strings.Split(strings.Trim(row, "| "), " | ") {
				cells = append(cells, codeSpans(cell))
			}
			rows = append(rows, cells)
		}
		if len(rows) == 0 {
			t.Fatalf("table %q has no rows", header)
		}
		return rows
	}
	t.Fatalf("no table %q", header)
	return nil
}

var codeSpan = regexp.MustCompile("`([^`]*)`|\\(none\\)")

func codeSpans(cell string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		if m[0] == "(none)" {
			out = append(out, "(none)")
			continue
		}
		out = append(out, m[1])
	}
	return out
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestAllowlistPatternExamples(t *testing.T) {
	for _, row := range table(t, readDoc(t, "allowlist.md"), "| entry | keeps | does not keep |") {
		entry := row[0][0]
		m, err := allowlist.NewMatcher([]string{entry}, nil)
		if err != nil {
			t.Errorf("%s: %v", entry, err)
			continue
		}
		for col, want := range []bool{true, false} {
			for _, name := range row[col+1] {
				var got string
				if id, ok := strings.CutPrefix(name, "id "); ok {
					got = m.MatchReferences(id, nil, nil)
				} else if strings.Contains(name, "@") {
					got = m.MatchReferences("", nil, []string{name})
				} else {
					got = m.MatchReferences("", []string{name}, nil)
				}
				if (got != "") != want {
					t.Errorf("docs/allowlist.md: %s keeps %s = %v; the table says %v", entry, name, got != "", want)
				}
			}
		}
	}
}

func TestAllowlistRefusalExamples(t *testing.T) {
	doc := readDoc(t, "allowlist.md")
	for _, tc := range []struct{ header, field string }{
		{"| entry | error |", "patterns"},
		{"| selector | error |", "selectors"},
	} {
		for _, row := range table(t, doc, tc.header) {
			entry := strings.Trim(row[0][0], `"`)
			var err error
			if tc.field == "patterns" {
				_, err = allowlist.NewMatcher([]string{entry}, nil)
			} else {
				_, err = allowlist.NewMatcher(nil, []string{entry})
			}
			if err == nil || !strings.Contains(err.Error(), row[1][0]) {
				t.Errorf("docs/allowlist.md: %s %q: error %v; the table says it contains %q", tc.field, entry, err, row[1][0])
			}
		}
	}
}

func TestAllowlistSelectorExamples(t *testing.T) {
	for _, row := range table(t, readDoc(t, "allowlist.md"), "| selector | keeps labels | does not keep labels |") {
		selector := row[0][0]
		m, err := allowlist.NewMatcher(nil, []string{selector})
		if err != nil {
			t.Errorf("%s: %v", selector, err)
			continue
		}
		for col, want := range []bool{true, false} {
			for _, set := range row[col+1] {
				labels := map[string]string{}
				if set != "(none)" {
					for _, kv := range strings.Split(set, ",") {
						k, v, _ := strings.Cut(kv, "=")
						labels[k] = v
					}
				}
				if got := m.MatchLabels(labels) != ""; got != want {
					t.Errorf("docs/allowlist.md: %s keeps labels %v = %v; the table says %v", selector, labels, got, want)
				}
			}
		}
	}
}

// TestKubeletConfigExamples compiles the allowlist of every KubeletConfiguration in the docs and
// the README, as the kubelet's validation does.
func TestKubeletConfigExamples(t *testing.T) {
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	found := 0
	for _, name := range []string{"allowlist.md", "image-keeper.md", "../README.md"} {
		for _, m := range block.FindAllStringSubmatch(readDoc(t, name), -1) {
			var kc struct {
				Kind                        string          `json:"kind"`
				FeatureGates                map[string]bool `json:"featureGates"`
				ImageGCExclude              []string        `json:"imageGCExclude"`
				ImageGCExcludeSelectors     []string        `json:"imageGCExcludeSelectors"`
				ImageGCExcludeBudgetPercent *int32          `json:"imageGCExcludeBudgetPercent"`
			}
			if err := yaml.Unmarshal([]byte(m[1]), &kc); err != nil || kc.Kind != "KubeletConfiguration" {
				continue
			}
			found++
			if !kc.FeatureGates["ImageGCExclusion"] {
				t.Errorf("%s: a KubeletConfiguration example sets the allowlist without the ImageGCExclusion gate", name)
			}
			if _, err := allowlist.NewMatcher(kc.ImageGCExclude, kc.ImageGCExcludeSelectors); err != nil {
				t.Errorf("%s: a KubeletConfiguration example is refused: %v", name, err)
			}
			if b := kc.ImageGCExcludeBudgetPercent; b != nil && (*b < 1 || *b > 100) {
				t.Errorf("%s: imageGCExcludeBudgetPercent %d is out of range", name, *b)
			}
		}
	}
	if found < 2 {
		t.Fatalf("found %d KubeletConfiguration examples; want the ones in allowlist.md and README.md", found)
	}
}
