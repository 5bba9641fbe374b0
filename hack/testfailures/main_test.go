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

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func events(t *testing.T, es ...event) string {
	t.Helper()
	var b strings.Builder
	for _, e := range es {
		line, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestSummarize(t *testing.T) {
	in := events(t,
		event{Action: "run", Test: "TestA"},
		event{Action: "output", Test: "TestA", Output: "=== RUN   TestA\n"},
		event{Action: "output", Test: "TestA", Output: "    a_test.go:10: pod p: ErrImagePull: denied\n"},
		event{Action: "output", Test: "TestA", Output: "    a_test.go:12: want Running, got Pending\n"},
		event{Action: "output", Test: "TestA", Output: "        second line of the message\n"},
		event{Action: "output", Test: "TestA", Output: "    helpers_test.go:140: kubelet log:\n"},
		event{Action: "output", Test: "TestA", Output: "        log 1\n"},
		event{Action: "output", Test: "TestA", Output: "        log 2\n"},
		event{Action: "output", Test: "TestA", Output: "        log 3\n"},
		event{Action: "output", Test: "TestA", Output: "        log 4 (not printed)\n"},
		event{Action: "output", Test: "TestA", Output: "--- FAIL: TestA (1.00s)\n"},
		event{Action: "fail", Test: "TestA"},
		event{Action: "output", Test: "TestB", Output: "    b_test.go:5: fine\n"},
		event{Action: "pass", Test: "TestB"},
		event{Action: "output", Output: "FAIL\n"},
	)
	var out bytes.Buffer
	if err := summarize(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	want := `===== 1 failed tests, 0 that did not finish, and what they said (whole output above):
--- FAIL: TestA
    a_test.go:10: pod p: ErrImagePull: denied
    a_test.go:12: want Running, got Pending
        second line of the message
    helpers_test.go:140: kubelet log:
        log 1
        log 2
        log 3
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

// The -timeout panic ends the binary: the tests still running get no "fail" event.
func TestSummarizeTimeout(t *testing.T) {
	in := events(t,
		event{Action: "run", Test: "TestSlow"},
		event{Action: "output", Test: "TestSlow", Output: "    slow_test.go:7: waiting for the pod\n"},
		event{Action: "run", Test: "TestQuick"},
		event{Action: "pass", Test: "TestQuick"},
		event{Action: "output", Output: "panic: test timed out after 40m0s\n"},
		event{Action: "output", Output: "\trunning tests:\n"},
		event{Action: "output", Output: "\t\tTestSlow (40m0s)\n"},
		event{Action: "fail"},
	)
	var out bytes.Buffer
	if err := summarize(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	want := `===== 0 failed tests, 1 that did not finish, and what they said (whole output above):
panic: test timed out after 40m0s
	running tests:
		TestSlow (40m0s)
--- DID NOT FINISH: TestSlow
    slow_test.go:7: waiting for the pod
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestSummarizeNothingFailed(t *testing.T) {
	var out bytes.Buffer
	in := events(t, event{Action: "pass", Test: "TestB"})
	if err := summarize(strings.NewReader(in), &out); err != nil || out.Len() != 0 {
		t.Errorf("summarize() = %q, %v; want nothing", out.String(), err)
	}
}

func TestSummarizeNotJSON(t *testing.T) {
	err := summarize(strings.NewReader("=== RUN   TestA\n"), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "go tool test2json -t") {
		t.Errorf("summarize(text) error = %v; want one naming test2json", err)
	}
}
