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

// Command testfailures prints, for each failed test of a `go test -v` run, the messages the
// test itself logged (the file:line lines and a few lines of each), without the process logs
// the e2e harness dumps after a failure. `make e2e` runs it when the tests fail, so that the
// end of the output, which is what a CI log shows first, says why:
//
//	go tool test2json -t < _output/e2e.log | go run ./hack/testfailures
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// A message of a test starts with its file and line, indented under the test's name.
var messageStart = regexp.MustCompile(`^\s+[\w.-]+\.go:\d+: `)

const (
	linesPerMessage = 4  // a message's first line and the next three
	linesPerTest    = 60 // then "(N more lines)"
)

// event is the part of test2json's output this reads.
type event struct {
	Action string
	Test   string
	Output string
}

func main() {
	if err := summarize(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "testfailures: %v\n", err)
		os.Exit(1)
	}
}

func summarize(r io.Reader, w io.Writer) error {
	output := map[string][]string{}
	var failed, started []string
	ended := map[string]bool{}
	// panicLines are the package's own lines from a panic on: the -timeout panic names the
	// tests still running, which never get a "fail" event.
	var panicLines []string
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for scanner.Scan() {
		line := scanner.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			return fmt.Errorf("stdin: %q is not test2json output (pipe `go tool test2json -t` into this): %w", truncate(string(line)), err)
		}
		if e.Test == "" {
			line := strings.TrimRight(e.Output, "\n")
			if e.Action == "output" && (len(panicLines) > 0 || strings.HasPrefix(line, "panic: ")) && len(panicLines) < linesPerTest {
				panicLines = append(panicLines, line)
			}
			continue
		}
		switch e.Action {
		case "run":
			started = append(started, e.Test)
		case "output":
			output[e.Test] = append(output[e.Test], strings.TrimRight(e.Output, "\n"))
		case "fail":
			failed = append(failed, e.Test)
			ended[e.Test] = true
		case "pass", "skip":
			ended[e.Test] = true
		}
	}
	if err := scanner.Err(); err != nil {
		return fmt.Errorf("stdin: %w", err)
	}
	var unfinished []string
	for _, name := range started {
		if !ended[name] {
			unfinished = append(unfinished, name)
		}
	}
	if len(failed)+len(unfinished) == 0 && len(panicLines) == 0 {
		return nil
	}
	fmt.Fprintf(w, "===== %d failed tests, %d that did not finish, and what they said (whole output above):\n", len(failed), len(unfinished))
	if len(panicLines) > 0 {
		fmt.Fprintln(w, strings.Join(panicLines, "\n"))
	}
	for _, name := range append(failed, unfinished...) {
		if ended[name] {
			fmt.Fprintf(w, "--- FAIL: %s\n", name)
		} else {
			fmt.Fprintf(w, "--- DID NOT FINISH: %s\n", name)
		}
		printed, skipped, inMessage := 0, 0, 0
		for _, l := range output[name] {
			switch {
			case messageStart.MatchString(l):
				inMessage = linesPerMessage
			case inMessage == 0 || strings.HasPrefix(l, "---") || strings.HasPrefix(l, "==="):
				inMessage = 0
				continue
			}
			inMessage--
			if printed == linesPerTest {
				skipped++
				continue
			}
			fmt.Fprintln(w, l)
			printed++
		}
		if skipped > 0 {
			fmt.Fprintf(w, "    (%d more lines)\n", skipped)
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
