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

package keeper

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The last good config: saved when a config loads, started from when the current one does not,
// never a reason to run with a config that no longer loads when nothing good was ever saved.
func TestLoadLastGood(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "config.yaml")
	good := "apiVersion: " + APIVersion + "\nkind: " + Kind + "\nimages:\n  - example.com/app:1\n"
	broken := "apiVersion: " + APIVersion + "\nkind: " + Kind + "\nimages:\n  - Example.com/App:1\n"
	l := &LastGood{Dir: state}
	src := Sources{ConfigFile: config}

	writeFile(t, config, broken)
	if _, _, err := LoadLastGood(src, l); err == nil || !strings.Contains(err.Error(), "no last good config in "+state) {
		t.Errorf("broken, nothing saved: %v; want refused, saying no good config has loaded here", err)
	}

	writeFile(t, config, good)
	w, stale, err := LoadLastGood(src, l)
	if err != nil || stale != nil || len(w.Images) != 1 {
		t.Fatalf("good: %v, %v, %+v", err, stale, w)
	}
	if err := l.Save(w.ConfigData); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(state, LastGoodFile)
	if data, err := os.ReadFile(saved); err != nil || string(data) != good {
		t.Fatalf("saved %q, %v; want the config as loaded", data, err)
	}
	if info, _ := os.Stat(saved); info.Mode().Perm() != 0o600 {
		t.Errorf("saved with mode %v; want 0600", info.Mode().Perm())
	}

	writeFile(t, config, broken)
	w, stale, err = LoadLastGood(src, l)
	if err != nil || w == nil || len(w.Images) != 1 || w.Images[0].Reference != "example.com/app:1" {
		t.Fatalf("broken after a good one: %v, %+v; want the last good list", err, w)
	}
	if stale == nil || !strings.Contains(stale.Error(), config) || !strings.Contains(stale.Error(), "Example.com/App:1") {
		t.Errorf("stale = %v; want the current config's error, naming it and the entry", stale)
	}

	// A broken kubelet config is not the config's to stand in for.
	kubelet := filepath.Join(dir, "kubelet.yaml")
	writeFile(t, kubelet, "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nimageGCExclude: [\"*\"]\n")
	if _, _, err := LoadLastGood(Sources{ConfigFile: config, KubeletConfigFile: kubelet}, l); err == nil || !strings.Contains(err.Error(), "the last good config does not load either") {
		t.Errorf("broken config and kubelet config: %v; want both errors", err)
	}
	// Only the kubelet config broken: its error, once.
	writeFile(t, config, good)
	if _, _, err := LoadLastGood(Sources{ConfigFile: config, KubeletConfigFile: kubelet}, l); err == nil || strings.Contains(err.Error(), "does not load either") || strings.Count(err.Error(), kubelet) != 1 {
		t.Errorf("broken kubelet config: %v; want its error once", err)
	}
	writeFile(t, config, broken)
	// Without a state directory, a broken config is refused as before.
	if _, _, err := LoadLastGood(src, nil); err == nil {
		t.Error("no state directory: a broken config loaded")
	}
}
