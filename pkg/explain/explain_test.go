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

package explain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

var (
	idA = "sha256:" + strings.Repeat("a", 64)
	idB = "sha256:" + strings.Repeat("b", 64)
)

func TestExplainDecisions(t *testing.T) {
	al := Allowlist{
		Patterns:  []string{"registry.example.com/*/agent", "docker.io/library/nginx:1.*", idA, "nginx:1.27"},
		Selectors: []string{"tier in (edge)"},
		GateOn:    true,
	}
	images := []Image{
		{ID: "sha256:01", RepoTags: []string{"docker.io/library/nginx:1.27"}, Size: 10},
		{ID: "sha256:02", RepoTags: []string{"docker.io/library/nginx:2.0"}, Size: 10},
		{ID: "sha256:03", RepoTags: []string{"registry.example.com/team-a/agent:2"}, InUse: true},
		{ID: "sha256:04", RepoTags: []string{"registry.example.com/pause:3.10"}, Pinned: true},
		{ID: "sha256:05", RepoTags: []string{"registry.example.com/web:1"}, Labels: map[string]string{"tier": "edge", "team": "a"}},
		{ID: "sha256:06", RepoTags: []string{"registry.example.com/web:2"}, LabelsError: "rpc error: code = Unavailable"},
		{ID: "sha256:07", RepoDigests: []string{"ghcr.io/acme/tool@" + idA}},
		{ID: idB, RepoTags: []string{"registry.example.com/team-b/agent:1"}},
		{ID: "sha256:09", RepoTags: []string{"registry.example.com/held:1"}, ImageVolume: true},
	}
	r, err := Explain(al, images, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		decision     Decision
		entry, field string
		matchedBy    string
	}{
		// Two entries match; the kubelet's matcher credits the earlier one.
		"docker.io/library/nginx:1.27":        {Kept, "docker.io/library/nginx:1.*", "imageGCExclude", "docker.io/library/nginx:1.27"},
		"docker.io/library/nginx:2.0":         {Collectable, "", "", ""},
		"registry.example.com/team-a/agent:2": {InUse, "registry.example.com/*/agent", "imageGCExclude", "registry.example.com/team-a/agent:2"},
		"registry.example.com/pause:3.10":     {Pinned, "", "", ""},
		"registry.example.com/web:1":          {Kept, "tier in (edge)", "imageGCExcludeSelectors", "labels tier=edge"},
		"registry.example.com/web:2":          {LabelsUnknown, "", "", ""},
		"ghcr.io/acme/tool@" + idA:            {Kept, idA, "imageGCExclude", "ghcr.io/acme/tool@" + idA},
		"registry.example.com/team-b/agent:1": {Kept, "registry.example.com/*/agent", "imageGCExclude", "registry.example.com/team-b/agent:1"},
		// Mounted as an image volume (holder mode): in use for the kubelet, whatever the list says.
		"registry.example.com/held:1": {HeldByImageVolume, "", "", ""},
	}
	for _, x := range r.Images {
		t.Run(x.Name(), func(t *testing.T) {
			w, ok := want[x.Name()]
			if !ok {
				t.Fatal("unexpected image")
			}
			if x.Decision != w.decision || x.Entry != w.entry || x.Field != w.field || x.MatchedBy != w.matchedBy {
				t.Errorf("got %q by %s %q (%q); want %q by %s %q (%q)", x.Decision, x.Field, x.Entry, x.MatchedBy, w.decision, w.field, w.entry, w.matchedBy)
			}
		})
	}
	// Each entry counts what it matches by itself: the wildcard "nginx:1.*" is not credited for
	// nginx:1.27 but matches it, so --strict does not call it a typo.
	uses := map[string]int{}
	for _, e := range r.Entries {
		uses[e.Entry] = e.Images
	}
	wantUses := map[string]int{"registry.example.com/*/agent": 2, "docker.io/library/nginx:1.*": 1, idA: 1, "nginx:1.27": 1, "tier in (edge)": 1}
	for entry, n := range wantUses {
		if uses[entry] != n {
			t.Errorf("entry %q matches %d images; want %d", entry, uses[entry], n)
		}
	}
	if len(r.Unmatched()) != 0 {
		t.Errorf("unmatched entries %v", r.Unmatched())
	}
}

func TestExplainUnmatchedAndGateOff(t *testing.T) {
	images := []Image{{ID: "sha256:01", RepoTags: []string{"docker.io/library/nginx:1.27"}}}
	r, err := Explain(Allowlist{Patterns: []string{"nginx:1.27", "registry.exmaple.com/*"}}, images, 0)
	if err != nil {
		t.Fatal(err)
	}
	if u := r.Unmatched(); len(u) != 1 || u[0].Entry != "registry.exmaple.com/*" {
		t.Errorf("Unmatched() = %v; want the misspelt registry", u)
	}
	if !r.GateOff || r.Images[0].Decision != Collectable || r.Images[0].Entry != "nginx:1.27" {
		t.Errorf("gate off: %+v, %+v; want collectable, with the entry that would keep it", r.GateOff, r.Images[0])
	}
}

func TestExplainBudget(t *testing.T) {
	images := []Image{
		{ID: "sha256:01", RepoTags: []string{"example.com/keep/a:1"}, Size: 30},
		{ID: "sha256:02", RepoTags: []string{"example.com/keep/b:1"}, Size: 20},
		{ID: "sha256:03", RepoTags: []string{"example.com/keep/c:1"}, Size: 40},
		{ID: "sha256:04", RepoTags: []string{"example.com/keep/d:1"}, Size: 500, InUse: true}, // not counted
		{ID: "sha256:05", RepoTags: []string{"example.com/other:1"}, Size: 100},
	}
	al := Allowlist{Patterns: []string{"example.com/keep/*"}, GateOn: true, BudgetPercent: 10}
	for _, tc := range []struct {
		name     string
		patterns []string
		capacity int64
		over     bool
		atLeast  int
		// collected are the images the kubelet collects when none was used since it started.
		collected []string
	}{
		{"within", nil, 900, false, 0, nil}, // budget 90 = 30+20+40
		// One entry keeps all three: ranked by image ID, a (30) and b (20) fit in 80, c does not.
		{"over by one", nil, 800, true, 1, []string{"sha256:03"}},
		// Budget 40: only a fits in the ranking; in any order, only a or b would.
		{"over by two", nil, 400, true, 2, []string{"sha256:02", "sha256:03"}},
		// An earlier entry ranks c first: c (40) and a (30) fit in 80, b does not.
		{"ranked by entry", []string{"example.com/keep/c", "example.com/keep/*"}, 800, true, 1, []string{"sha256:02"}},
		{"unknown capacity", nil, 0, false, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			al := al
			if tc.patterns != nil {
				al.Patterns = tc.patterns
			}
			r, err := Explain(al, images, tc.capacity)
			if err != nil {
				t.Fatal(err)
			}
			b := r.Budget
			if b == nil || b.KeptBytes != 90 || b.Bytes != tc.capacity/10 || b.Over() != tc.over || b.AtLeast != tc.atLeast || b.Collects != len(tc.collected) {
				t.Fatalf("budget %+v; want kept 90 of %d, over %v, at least %d, collects %d", b, tc.capacity/10, tc.over, tc.atLeast, len(tc.collected))
			}
			var collected []string
			for _, x := range r.Images {
				if x.AtRisk != (tc.over && x.Decision == Kept) {
					t.Errorf("%s (%s): at risk %v", x.Name(), x.Decision, x.AtRisk)
				}
				if x.OverBudget {
					collected = append(collected, x.ID)
				}
			}
			if !slices.Equal(collected, tc.collected) {
				t.Errorf("over budget: %v; want %v", collected, tc.collected)
			}
			var out bytes.Buffer
			if err := PrintTable(&out, r); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{true: fmt.Sprintf("it collects the %d marked (over budget)", len(tc.collected)), false: "Budget:"}[tc.over]; !strings.Contains(out.String(), want) {
				t.Errorf("table lacks %q:\n%s", want, out.String())
			}
		})
	}
	if r, _ := Explain(Allowlist{Patterns: []string{"example.com/keep/*"}, GateOn: true}, images, 900); r.Budget != nil {
		t.Errorf("no imageGCExcludeBudgetPercent: budget %+v", r.Budget)
	}
}

func TestExplainRefusesWhatTheKubeletRefuses(t *testing.T) {
	_, err := Explain(Allowlist{Patterns: []string{"*/*", "ghcr.io"}, Selectors: []string{"!deprecated"}}, nil, 0)
	for _, want := range []string{`"*/*"`, `"ghcr.io"`, `"!deprecated"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestParseReferences(t *testing.T) {
	// The last ID is written as CRI-O lists image IDs, without "sha256:".
	crioID := strings.Repeat("c", 64)
	images, err := ParseReferences(strings.NewReader("# review\n\nnginx:1.27\nghcr.io/acme/tool@" + idA + "\n" + idB + "\nregistry.example.com/web:1 tier=edge, team=a\n" + crioID + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(images)
	want := `[{"repoTags":["docker.io/library/nginx:1.27"]},{"repoDigests":["ghcr.io/acme/tool@` + idA + `"]},{"id":"` + idB + `"},{"repoTags":["registry.example.com/web:1"],"labels":{"team":"a","tier":"edge"}},{"id":"` + crioID + `"}]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	_, err = ParseReferences(strings.NewReader("nginx\nnginx:1 tier\nsha256:abc\nNginx:1\nok:1\n"))
	for _, want := range []string{`line 1: "nginx" is not an image reference with a tag or a digest`, `line 2: "tier": labels are key=value`, `line 3: "sha256:abc": an image ID`, `line 4: "Nginx:1"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "line 5") {
		t.Errorf("a good line is reported: %v", err)
	}
}

// Bad input costs bounded memory and output: bad lines are reported 20 at most, every line
// counts against MaxLines (blank, comment and bad ones too), and a long line ends the reading.
func TestParseReferencesBounds(t *testing.T) {
	_, err := ParseReferences(strings.NewReader(strings.Repeat("not a reference\n", 1000)))
	if err == nil || strings.Count(err.Error(), "line ") != maxLineErrors || !strings.Contains(err.Error(), "and 980 more bad lines") {
		t.Errorf("1,000 bad lines: %v", err)
	}
	for name, input := range map[string]string{
		"blank lines": strings.Repeat("\n", MaxLines+1),
		"bad lines":   strings.Repeat("x\n", MaxLines+1),
		"comments":    strings.Repeat("# x\n", MaxLines+1),
		"good lines":  strings.Repeat("nginx:1\n", MaxLines+1),
		"a long line": "nginx:1 " + strings.Repeat("a=b,", MaxLineLength) + "\n",
	} {
		_, err := ParseReferences(strings.NewReader(input))
		if err == nil || len(err.Error()) > 200 {
			t.Errorf("%s: error %.300v; want a short one", name, err)
		}
	}
}
