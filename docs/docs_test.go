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
// allowlist tables runs through the kubelet's own matcher, every kubelet configuration
// snippet compiles, and the `image-keeper explain` session prints what it shows.
package docs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
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

// The pattern tables of the user guide and of the KEP draft, checked against both kubelets'
// matchers: the upstream tier's (allowlist.NewMatcher) and this fork's (allowlist.Compile).
// The fork's wildcard table must be refused by the upstream tier.
func TestAllowlistPatternExamples(t *testing.T) {
	upstreamTier := func(entries []string) (matcher, error) { return allowlist.NewMatcher(entries) }
	fork := func(entries []string) (matcher, error) { return allowlist.Compile(entries, nil) }
	for _, tc := range []struct {
		doc, header  string
		upstreamTier bool
	}{
		{"allowlist.md", "| entry | keeps | does not keep |", true},
		{"allowlist.md", "| wildcard entry | keeps | does not keep |", false},
		{"kep/README.md", "| entry | keeps | does not keep |", true},
	} {
		t.Run(tc.doc+" "+tc.header, func(t *testing.T) {
			checkPatternTable(t, tc.doc, tc.header, fork)
			if tc.upstreamTier {
				checkPatternTable(t, tc.doc, tc.header, upstreamTier)
				return
			}
			for _, row := range table(t, readDoc(t, tc.doc), tc.header) {
				const want = "'*' is allowed only as the whole last path component after a registry host"
				if _, err := allowlist.NewMatcher(row[0]); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("docs/%s: the upstream tier takes %s (error %v); the table says it is this kubelet's only", tc.doc, row[0][0], err)
				}
			}
		})
	}
}

// matcher is what both kubelets' compiled patterns answer.
type matcher interface {
	MatchReferences(imageID string, repoTags, repoDigests []string) string
}

func checkPatternTable(t *testing.T, doc, header string, compile func([]string) (matcher, error)) {
	for _, row := range table(t, readDoc(t, doc), header) {
		entry := row[0][0]
		m, err := compile([]string{entry})
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
					t.Errorf("docs/%s: %s keeps %s = %v; the table says %v", doc, entry, name, got != "", want)
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
				_, err = allowlist.Compile([]string{entry}, nil)
			} else {
				_, err = allowlist.NewSelectors([]string{entry})
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
		m, err := allowlist.NewSelectors([]string{selector})
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
				Kind                         string          `json:"kind"`
				FeatureGates                 map[string]bool `json:"featureGates"`
				ImageGCExclude               []string        `json:"imageGCExclude"`
				ImageGCExcludeSelectors      []string        `json:"imageGCExcludeSelectors"`
				ImageGCExcludeBudgetPercent  *int32          `json:"imageGCExcludeBudgetPercent"`
				ImageGCExcludeEvictionPolicy *string         `json:"imageGCExcludeEvictionPolicy"`
			}
			if err := yaml.Unmarshal([]byte(m[1]), &kc); err != nil || kc.Kind != "KubeletConfiguration" {
				continue
			}
			found++
			if !kc.FeatureGates["ImageGCExclusion"] {
				t.Errorf("%s: a KubeletConfiguration example sets the allowlist without the ImageGCExclusion gate", name)
			}
			if _, err := allowlist.Compile(kc.ImageGCExclude, kc.ImageGCExcludeSelectors); err != nil {
				t.Errorf("%s: a KubeletConfiguration example is refused: %v", name, err)
			}
			if b := kc.ImageGCExcludeBudgetPercent; b != nil && (*b < 1 || *b > 100) {
				t.Errorf("%s: imageGCExcludeBudgetPercent %d is out of range", name, *b)
			}
			if p := kc.ImageGCExcludeEvictionPolicy; p != nil && *p != "RemoveKeptImages" && *p != "EvictPods" {
				t.Errorf("%s: imageGCExcludeEvictionPolicy %q is neither RemoveKeptImages nor EvictPods", name, *p)
			}
		}
	}
	if found < 2 {
		t.Fatalf("found %d KubeletConfiguration examples; want the ones in allowlist.md and README.md", found)
	}
}

// fencedBlocks returns the fenced code blocks of doc after marker, in order: their info string
// and body.
func fencedBlocks(t *testing.T, doc, marker string) (infos, bodies []string) {
	t.Helper()
	i := strings.Index(doc, marker)
	if i < 0 {
		t.Fatalf("no %q in the doc", marker)
	}
	lines := strings.Split(doc[i:], "\n")
	for j := 0; j < len(lines); j++ {
		if !strings.HasPrefix(lines[j], "```") {
			continue
		}
		info := strings.TrimPrefix(lines[j], "```")
		var body []string
		for j++; j < len(lines) && lines[j] != "```"; j++ {
			body = append(body, lines[j])
		}
		infos, bodies = append(infos, info), append(bodies, strings.Join(body, "\n")+"\n")
	}
	return infos, bodies
}

// The `image-keeper explain` session in allowlist.md, run as written: the config and the image
// list are the doc's, and the output and exit status must be the doc's, byte for byte.
func TestExplainExample(t *testing.T) {
	doc := readDoc(t, "allowlist.md")
	infos, bodies := fencedBlocks(t, doc, "<!-- explain-example -->")
	if len(infos) < 3 || infos[0] != "yaml" || infos[1] != "text" || infos[2] != "console" {
		t.Fatalf("want yaml, text and console blocks after the marker; got %q", infos)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{"review.conf": bodies[0], "images.txt": bodies[1]} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "image-keeper")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/image-keeper")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // make's settings: the build cache serves both
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	session := strings.Split(strings.TrimSuffix(bodies[2], "\n"), "\n")
	command := strings.TrimPrefix(session[0], "$ ")
	args, input, ok := strings.Cut(command, " < ")
	if !ok || !strings.HasPrefix(args, "image-keeper explain ") || session[len(session)-2] != "$ echo $?" {
		t.Fatalf("the session is not `$ image-keeper explain … < file`, output, `$ echo $?`, status: %q", session)
	}
	wantOutput := strings.Join(session[1:len(session)-2], "\n") + "\n"
	wantCode, err := strconv.Atoi(session[len(session)-1])
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := os.Open(filepath.Join(dir, input))
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	cmd := exec.Command(bin, strings.Fields(args)[1:]...)
	cmd.Dir, cmd.Stdin = dir, stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			t.Fatal(err)
		}
		code = exitErr.ExitCode()
	}
	if got := stdout.String() + stderr.String(); got != wantOutput || code != wantCode {
		t.Errorf("`%s` printed (exit %d):\n%s\nthe doc says (exit %d):\n%s", command, code, got, wantCode, wantOutput)
	}
}

// statusExample is the state the `image-keeper status` example in image-keeper.md shows: one
// image present and protected, one missing behind a registry that refuses connections.
func statusExample() keeper.Status {
	at := time.Date(2026, 11, 29, 17, 2, 11, 0, time.UTC)
	return keeper.Status{
		LastReconcile: at,
		Images: []keeper.ImageState{
			{Reference: "docker.io/library/nginx:1.27", Source: "config", Present: true, ImageID: "sha256:1b5e2c9f0a4d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b", Size: 1 << 20,
				Protected: keeper.Protection{State: keeper.Protected, Entry: "nginx"}, LastPull: at},
			{Reference: "example.com/missing:1", Source: "config",
				Protected: keeper.Protection{State: keeper.Unprotected, Reason: "the kubelet's garbage collection would delete it"},
				LastError: `rpc error: code = Unknown desc = failed to pull and unpack image "example.com/missing:1": dial tcp 127.0.0.1:5000: connect: connection refused`, Failures: 3},
		},
	}
}

// The status table in image-keeper.md is what PrintStatus prints for statusExample.
func TestStatusExample(t *testing.T) {
	_, bodies := fencedBlocks(t, readDoc(t, "image-keeper.md"), "<!-- status-example -->")
	var out bytes.Buffer
	keeper.PrintStatus(&out, statusExample())
	if len(bodies) == 0 || bodies[0] != out.String() {
		t.Errorf("image-keeper.md's status example is not what `image-keeper status` prints; it prints:\n%s", out.String())
	}
}

// warm-nodes.md shows the shipped warm-node drop-in as it is.
func TestWarmNodeDropInShown(t *testing.T) {
	_, bodies := fencedBlocks(t, readDoc(t, "warm-nodes.md"), "<!-- warm-nodes-dropin -->")
	file, err := os.ReadFile(filepath.Join("..", "deploy", "kubelet", "60-imagecache-warm.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) == 0 || bodies[0] != string(file) {
		t.Errorf("warm-nodes.md's drop-in is not deploy/kubelet/60-imagecache-warm.conf as shipped")
	}
}

// The kubelet's events that allowlist.md quotes are the ones the series' unit tests expect,
// word for word: each quoted line appears in a test of patches/.
func TestKubeletEventExamples(t *testing.T) {
	patches, err := filepath.Glob("../patches/*.patch")
	if err != nil || len(patches) == 0 {
		t.Fatalf("no patches: %v", err)
	}
	var series strings.Builder
	for _, p := range patches {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		series.Write(data)
	}
	found := 0
	for _, line := range strings.Split(readDoc(t, "allowlist.md"), "\n") {
		if !strings.HasPrefix(line, "Warning ImageGCExclusion") {
			continue
		}
		found++
		if !strings.Contains(series.String(), strconv.Quote(line)) {
			t.Errorf("allowlist.md quotes an event no test of patches/ expects:\n%s", line)
		}
	}
	if found < 2 {
		t.Fatalf("found %d quoted events in allowlist.md; want the over-budget and the eviction ones", found)
	}
}
