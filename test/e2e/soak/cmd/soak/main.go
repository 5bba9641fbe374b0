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

// soak runs the edge soak (package soak) and writes its results: `make soak`
// (SOAK_DURATION, default 1h; SOAK_SEED, default random, printed).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kubelet-imagecache/kubelet-imagecache/test/e2e/soak"
)

func main() {
	repo := flag.String("repo", ".", "repository root")
	bin := flag.String("bin", "_output/bin", "directory with kubelet and image-keeper")
	out := flag.String("out", "", "directory for soak.md, soak.svg and soak.json; empty writes none")
	duration := flag.Duration("duration", 0, "how long to inject faults (e.g. 1h)")
	seed := flag.Uint64("seed", 0, "schedule seed; 0 picks one (printed)")
	logs := flag.String("logs", "_output/soak-logs", "where the components' logs are copied at the end")
	policy := flag.String("policy", soak.PolicyEvictPods, "the kubelet's imageGCExcludeEvictionPolicy: "+soak.PolicyEvictPods+" (no kept image may go) or "+soak.PolicyRemoveKeptImages+" (the default rule: kept images yield when that relieves the pressure)")
	flag.Parse()
	if *duration <= 0 {
		log.Fatalf("--duration=%v: give how long to inject faults, e.g. --duration=1h (make soak SOAK_DURATION=1h)", *duration)
	}
	if *seed == 0 {
		*seed = rand.Uint64N(1 << 31)
	}
	fmt.Printf("soak: seed %d (rerun the same schedule with SOAK_SEED=%d)\n", *seed, *seed)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	report, err := soak.Run(ctx, soak.Options{Repo: *repo, Bin: *bin, Duration: *duration, Seed: *seed, Policy: *policy, KeepLogs: *logs, Logf: log.Printf})
	stop()
	if report != nil {
		fmt.Println("soak:", report.Summary())
		if *out != "" {
			data, _ := json.MarshalIndent(report, "", "  ")
			command := fmt.Sprintf("make soak SOAK_DURATION=%v SOAK_SEED=%d SOAK_POLICY=%s", *duration, *seed, *policy)
			name := report.FileName()
			for name, content := range map[string]string{name + ".md": report.Markdown(command), name + ".svg": report.SVG(), name + ".json": string(data) + "\n"} {
				if err := os.WriteFile(filepath.Join(*out, name), []byte(content), 0o644); err != nil {
					log.Fatal(err)
				}
			}
			fmt.Printf("soak: results in %s\n", filepath.Join(*out, name+".md"))
		}
	}
	if err != nil {
		log.Fatalf("soak: %v", err)
	}
	if len(report.Violations) > 0 {
		os.Exit(1)
	}
}
