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
package allowlist

import (
	"fmt"
	"testing"
)

// benchImage is an image as containerd reports it: normalized names, one tag, one repo digest.
type benchImage struct {
	id      string
	tags    []string
	digests []string
}

var benchRegistries = []string{"docker.io/library", "docker.io/acme", "ghcr.io/acme", "quay.io/team", "registry.example.com:5000/edge"}

// benchImages returns n distinct images over 5 registries.
func benchImages(n int) []benchImage {
	images := make([]benchImage, n)
	for i := range images {
		repo := fmt.Sprintf("%s/app-%d", benchRegistries[i%len(benchRegistries)], i/len(benchRegistries))
		images[i] = benchImage{
			id:      fmt.Sprintf("sha256:%064x", i),
			tags:    []string{fmt.Sprintf("%s:v%d", repo, i%7)},
			digests: []string{fmt.Sprintf("%s@sha256:%064x", repo, 1<<40+i)},
		}
	}
	return images
}

// benchAllowlist returns n patterns, a quarter each exact tags, bare repositories, repo digests
// and repository prefixes, spread over the images of benchImages(10*n) so that some match.
func benchAllowlist(n int) (patterns []string) {
	for i := 0; i < n; i++ {
		target := i * 10
		repo := fmt.Sprintf("%s/app-%d", benchRegistries[target%len(benchRegistries)], target/len(benchRegistries))
		switch i % 4 {
		case 0:
			patterns = append(patterns, fmt.Sprintf("%s:v%d", repo, target%7))
		case 1:
			patterns = append(patterns, repo)
		case 2:
			patterns = append(patterns, fmt.Sprintf("%s@sha256:%064x", repo, 1<<40+target))
		case 3:
			patterns = append(patterns, fmt.Sprintf("%s/team-%d/*", benchRegistries[i%len(benchRegistries)], i))
		}
	}
	return patterns
}

// BenchmarkMatcher measures one image against the allowlist (op = one image), references
// only: the cost the allowlist adds per GC candidate before its decision is cached.
func BenchmarkMatcher(b *testing.B) {
	for _, entries := range []int{10, 1000} {
		b.Run(fmt.Sprintf("entries=%d", entries), func(b *testing.B) {
			matcher, err := NewMatcher(benchAllowlist(entries))
			if err != nil {
				b.Fatal(err)
			}
			images := benchImages(10000)
			matched := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				image := &images[i%len(images)]
				if matcher.MatchReferences(image.id, image.tags, image.digests) != "" {
					matched++
				}
			}
			b.StopTimer()
			if b.N >= len(images) && matched == 0 {
				b.Fatal("no image matched: the benchmark does not exercise matches")
			}
		})
	}
}
