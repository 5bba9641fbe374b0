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

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A value another live process claimed is never handed out; a dead process's claims are
// dropped; a release drops only this process's claim.
func TestClaims(t *testing.T) {
	saved := ClaimsFile
	ClaimsFile = filepath.Join(t.TempDir(), "claims")
	t.Cleanup(func() { ClaimsFile = saved })

	// A process that has exited: its PID is not alive (it was reaped by Wait).
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := dead.Process.Pid
	// PID 1 is always alive.
	initial := fmt.Sprintf("subnet 5 1\nsubnet 6 %d\nport 5 1\nnot a claim\n", deadPID)
	if err := os.WriteFile(ClaimsFile, []byte(initial), 0o600); err != nil {
		t.Fatal(err)
	}
	firstFree := func(taken map[int]bool) (int, error) {
		for v := 5; ; v++ {
			if !taken[v] {
				return v, nil
			}
		}
	}
	got, err := claimOne("subnet", firstFree)
	if err != nil {
		t.Fatal(err)
	}
	if got != 6 {
		t.Errorf("claimed subnet %d, want 6 (5 is PID 1's; 6's claimant is gone; ports are another kind)", got)
	}
	if again, err := claimOne("subnet", firstFree); err != nil || again != 7 {
		t.Errorf("second claim = %d, %v; want 7 (6 is this process's now)", again, err)
	}
	if err := releaseClaim("subnet", 6); err != nil {
		t.Fatal(err)
	}
	if err := releaseClaim("subnet", 5); err != nil { // PID 1's: stays
		t.Fatal(err)
	}
	data, err := os.ReadFile(ClaimsFile)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("subnet 5 1\nport 5 1\nsubnet 7 %d\n", os.Getpid())
	if string(data) != want {
		t.Errorf("claims file:\n%s\nwant:\n%s", data, want)
	}

	// FreePort records what it hands out.
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(ClaimsFile)
	if line := fmt.Sprintf("port %d %d\n", port, os.Getpid()); !strings.Contains(string(data), line) {
		t.Errorf("claims file lacks %q:\n%s", line, data)
	}
}
