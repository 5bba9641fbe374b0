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
	"strings"

	"github.com/distribution/reference"
)

const dockerDomain = "docker.io"

// NormalizeReference returns a reference as containerd and CRI-O report it, with the registry
// and, on Docker Hub, the "library/" namespace spelled out, as
// github.com/distribution/reference normalizes it: "nginx:1.27" becomes
// "docker.io/library/nginx:1.27"; "localhost:5000/app:1" is unchanged (a port is not a tag).
// ok is false for what cannot name an image ("<none>:<none>", ""). A reference whose first
// component is a registry, as runtimes report them ("docker.io/library/nginx:1.27"), is
// returned as it is, without parsing or copying: this runs for every name of every GC candidate.
// FuzzNormalizeReference holds the two paths to the same result.
func NormalizeReference(ref string) (string, bool) {
	if ref == "" || strings.IndexByte(ref, '<') >= 0 {
		return "", false
	}
	if slash := strings.IndexByte(ref, '/'); slash > 0 {
		domain, rest := ref[:slash], ref[slash+1:]
		if isRegistryHost(domain) && domain != "index."+dockerDomain && (domain != dockerDomain || strings.IndexByte(rest, '/') >= 0) {
			return ref, true
		}
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		// Not a reference the grammar accepts; compare it as reported.
		return ref, true
	}
	return named.String(), true
}

// isRegistryHost reports whether the first path component of a reference names a registry,
// by the rule of github.com/distribution/reference: it has a '.' or a ':', is "localhost", or
// has an upper-case letter (which no Docker Hub namespace has).
func isRegistryHost(component string) bool {
	if component == "localhost" || strings.IndexByte(component, '.') >= 0 || strings.IndexByte(component, ':') >= 0 {
		return true
	}
	for i := 0; i < len(component); i++ {
		if 'A' <= component[i] && component[i] <= 'Z' {
			return true
		}
	}
	return false
}

// splitReference cuts a normalized reference into its repository and its tag or digest:
// "docker.io/library/nginx:1.27" gives ("docker.io/library/nginx", "1.27", ""),
// "quay.io/app@sha256:<hex>" gives ("quay.io/app", "", "sha256:<hex>"). A tag written next to a
// digest ("repo:tag@sha256:<hex>") is dropped: runtimes report repo digests without tags.
func splitReference(ref string) (repo, tag, digest string) {
	if at := strings.IndexByte(ref, '@'); at >= 0 {
		repo, digest = ref[:at], ref[at+1:]
		if colon := strings.LastIndexByte(repo, ':'); colon > strings.LastIndexByte(repo, '/') {
			repo = repo[:colon]
		}
		return repo, "", digest
	}
	if colon := strings.LastIndexByte(ref, ':'); colon > strings.LastIndexByte(ref, '/') {
		return ref[:colon], ref[colon+1:], ""
	}
	return ref, "", ""
}
