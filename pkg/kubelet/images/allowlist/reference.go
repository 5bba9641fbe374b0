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

import "strings"

const (
	dockerDomain = "docker.io"
	officialRepo = "library/"
)

// NormalizeReference returns a reference as containerd and CRI-O report it, with the registry
// and, on Docker Hub, the "library/" namespace spelled out: "nginx:1.27" becomes
// "docker.io/library/nginx:1.27"; "localhost:5000/app:1" is unchanged (a port is not a tag).
// It does not validate; ok is false for what cannot name an image ("<none>:<none>", "").
// References that are already normalized, as runtimes report them, are returned without copying.
func NormalizeReference(ref string) (string, bool) {
	// Byte searches only: this runs for every name of every GC candidate.
	if ref == "" || strings.IndexByte(ref, '<') >= 0 {
		return "", false
	}
	slash := strings.IndexByte(ref, '/')
	if slash < 0 {
		return dockerDomain + "/" + officialRepo + ref, true
	}
	domain := ref[:slash]
	if !isRegistryHost(domain) {
		// No registry: Docker Hub, as in reference.ParseNormalizedNamed.
		return dockerDomain + "/" + ref, true
	}
	if domain == "index."+dockerDomain {
		ref, domain = dockerDomain+ref[slash:], dockerDomain
		slash = len(dockerDomain)
	}
	if domain == dockerDomain && strings.IndexByte(ref[slash+1:], '/') < 0 {
		return dockerDomain + "/" + officialRepo + ref[slash+1:], true
	}
	return ref, true
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
