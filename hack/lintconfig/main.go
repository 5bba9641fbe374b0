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

// lintconfig writes upstream's golangci-lint config without the plugin linters that
// hack/verify-upstream-lint.sh cannot build: lintconfig <in> <out> <linter>...
package main

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"sigs.k8s.io/yaml"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "lintconfig:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: lintconfig <in> <out> [linters to drop]")
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var config map[string]any
	if err := yaml.Unmarshal(data, &config); err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	linters, ok := config["linters"].(map[string]any)
	if !ok {
		return fmt.Errorf("%s: no linters section", args[0])
	}
	if enable, ok := linters["enable"].([]any); ok {
		linters["enable"] = slices.DeleteFunc(enable, func(l any) bool { return slices.Contains(args[2:], fmt.Sprint(l)) })
	}
	if settings, ok := linters["settings"].(map[string]any); ok {
		delete(settings, "custom")
	}
	out, err := yaml.Marshal(config)
	if err != nil {
		return err
	}
	return os.WriteFile(args[1], out, 0o644)
}
