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
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ClaimsFile is where the test processes on this machine record what they handed out to their
// nodes (ports, pod network subnets), so that two processes never hand out the same one: make
// e2e runs two side by side (hack/e2e.sh). portsGiven and subnetsGiven do the same within one
// process. A line is "kind value pid"; the file is read and written under an exclusive flock,
// and lines of processes that are gone are dropped.
var ClaimsFile = filepath.Join(os.TempDir(), "kubelet-imagecache-e2e-claims")

type claim struct {
	kind  string
	value int
	pid   int
}

// claimOne calls pick with the values of kind that live processes (this one included) hold, and
// records what pick returns as this process's, all under the file's lock.
func claimOne(kind string, pick func(taken map[int]bool) (int, error)) (int, error) {
	var value int
	err := editClaims(func(claims []claim) ([]claim, error) {
		taken := map[int]bool{}
		for _, c := range claims {
			if c.kind == kind {
				taken[c.value] = true
			}
		}
		v, err := pick(taken)
		if err != nil {
			return nil, err
		}
		value = v
		return append(claims, claim{kind, v, os.Getpid()}), nil
	})
	return value, err
}

// releaseClaim drops this process's claim of value.
func releaseClaim(kind string, value int) error {
	return editClaims(func(claims []claim) ([]claim, error) {
		kept := claims[:0]
		for _, c := range claims {
			if c.kind != kind || c.value != value || c.pid != os.Getpid() {
				kept = append(kept, c)
			}
		}
		return kept, nil
	})
}

// editClaims rewrites the file with what edit makes of its live claims, under an exclusive flock.
func editClaims(edit func([]claim) ([]claim, error)) (err error) {
	f, err := os.OpenFile(ClaimsFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("the test processes' claims: %w", err)
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", ClaimsFile, err)
	}
	var claims []claim
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue
		}
		value, err1 := strconv.Atoi(fields[1])
		pid, err2 := strconv.Atoi(fields[2])
		if err1 != nil || err2 != nil || !processAlive(pid) {
			continue
		}
		claims = append(claims, claim{fields[0], value, pid})
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", ClaimsFile, err)
	}
	claims, err = edit(claims)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, c := range claims {
		fmt.Fprintf(&b, "%s %d %d\n", c.kind, c.value, c.pid)
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(b.String()), 0)
	return err // the lock goes with the file's close
}

// processAlive says whether pid is a running process (signal 0: EPERM means it exists).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
