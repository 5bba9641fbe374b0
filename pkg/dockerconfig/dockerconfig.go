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

// Package dockerconfig reads registry credentials from a docker config.json file and matches
// them to images the way the kubelet's keyring does (k8s.io/kubernetes/pkg/credentialprovider
// BasicDockerKeyring), so that image-keeper pulls with the login the kubelet would use.
package dockerconfig

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/configfile"
)

// defaultRegistryHost is where Docker Hub logins are kept, as in the kubelet.
const defaultRegistryHost = "index.docker.io"

// Keyring maps registry keys ("ghcr.io", "ghcr.io/acme", "*.example.com", "localhost:5000") to
// logins. Like the kubelet's keyring, a key matches an image when its host (with '*' globs per
// dot-separated part) and port match and its path is a prefix of the image's; the most specific
// key wins, and Docker Hub images fall back to the "index.docker.io" login. Unlike the kubelet's,
// it returns one login, the first in a fixed order, so that colliding keys resolve the same way
// on every run. It never prints secrets.
type Keyring struct {
	// index holds the keys, reverse-sorted so that longer paths on a host come first.
	index []string
	creds map[string]*runtimeapi.AuthConfig
}

type file struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
		RegistryToken string `json:"registrytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// Parse reads a docker config.json. Errors name the file and the entry, never a secret.
func Parse(path string, data []byte) (*Keyring, error) {
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("registry credentials %s: not a docker config.json: %v", path, err)
	}
	if f.CredsStore != "" || len(f.CredHelpers) > 0 {
		return nil, fmt.Errorf("registry credentials %s: credential helpers (credsStore %q, credHelpers for %d registries) are not supported: like the kubelet, image-keeper reads only the logins under \"auths\"; log in with credsStore unset so that docker writes them there, or use a kubelet image credential provider", path, f.CredsStore, len(f.CredHelpers))
	}
	logins := map[string]*runtimeapi.AuthConfig{}
	for key, entry := range f.Auths {
		// ServerAddress stays empty, as the kubelet sends it: containerd compares a non-empty
		// one with the registry host after url.Parse, which a bare "host:port" fails.
		auth := &runtimeapi.AuthConfig{
			Username:      entry.Username,
			Password:      entry.Password,
			IdentityToken: entry.IdentityToken,
			RegistryToken: entry.RegistryToken,
		}
		if entry.Auth != "" {
			decoded, err := base64.StdEncoding.DecodeString(entry.Auth)
			if err != nil {
				return nil, fmt.Errorf("registry credentials %s: auths[%q].auth is not base64", path, key)
			}
			user, pass, ok := strings.Cut(string(decoded), ":")
			if !ok {
				return nil, fmt.Errorf("registry credentials %s: auths[%q].auth must encode user:password", path, key)
			}
			auth.Username, auth.Password = user, pass
		}
		logins[key] = auth
	}
	k, err := NewKeyring(logins)
	if err != nil {
		return nil, fmt.Errorf("registry credentials %s: %w", path, err)
	}
	return k, nil
}

// NewKeyring indexes logins by their keys, as config.json's "auths" or a credential provider
// plugin's "auth" name them.
func NewKeyring(logins map[string]*runtimeapi.AuthConfig) (*Keyring, error) {
	// Sorted, so that two spellings of one key ("ghcr.io", "https://ghcr.io") resolve the same
	// way on every run: the first in this order wins.
	keys := make([]string, 0, len(logins))
	for key := range logins {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	k := &Keyring{creds: map[string]*runtimeapi.AuthConfig{}}
	for _, key := range keys {
		normalized, err := keyOf(key)
		if err != nil {
			return nil, fmt.Errorf("auths[%q]: %v", key, err)
		}
		if _, dup := k.creds[normalized]; dup {
			continue
		}
		k.creds[normalized] = logins[key]
		k.index = append(k.index, normalized)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(k.index)))
	return k, nil
}

// Matches reports whether a registry key or image pattern ("*.example.com", "ghcr.io/acme")
// matches the repository of a normalized reference, by the kubelet's rules.
func Matches(key, normalizedRef string) bool {
	normalized, err := keyOf(key)
	return err == nil && urlsMatch(normalized, Repository(normalizedRef))
}

// keyOf normalizes a config.json key as the kubelet's keyring does: no scheme, "/v1/" and
// "/v2/" mean the host itself.
func keyOf(key string) (string, error) {
	if !strings.HasPrefix(key, "https://") && !strings.HasPrefix(key, "http://") {
		key = "https://" + key
	}
	parsed, err := url.Parse(key)
	if err != nil {
		return "", err
	}
	if parsed.Host == "" {
		return "", errors.New("no registry host")
	}
	path := parsed.Path
	if strings.HasPrefix(path, "/v2/") || strings.HasPrefix(path, "/v1/") {
		path = path[3:]
	}
	if path == "" || path == "/" {
		return parsed.Host, nil
	}
	return parsed.Host + path, nil
}

// For returns the login for the repository of a normalized reference
// ("docker.io/library/nginx:1.27"), or nil.
func (k *Keyring) For(normalizedRef string) *runtimeapi.AuthConfig {
	if k == nil {
		return nil
	}
	repo := Repository(normalizedRef)
	for _, key := range k.index {
		if urlsMatch(key, repo) {
			return k.creds[key]
		}
	}
	if isDefaultRegistry(repo) {
		return k.creds[defaultRegistryHost]
	}
	return nil
}

// String lists the registries, not the secrets, so that a credential never reaches a log.
func (k *Keyring) String() string {
	if k == nil {
		return "no registry credentials"
	}
	return fmt.Sprintf("credentials for %d registries %v", len(k.index), k.index)
}

// Repository cuts the tag or digest off a reference: "ghcr.io/a/b:1" is "ghcr.io/a/b".
func Repository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

// isDefaultRegistry reports whether a repository is on Docker Hub, as the kubelet decides it.
func isDefaultRegistry(repo string) bool {
	first, _, ok := strings.Cut(repo, "/")
	if first == "" {
		return false
	}
	if !ok || first == "docker.io" || first == defaultRegistryHost {
		return true
	}
	return !strings.ContainsAny(first, ".:")
}

// urlsMatch is the kubelet's URLsMatchStr: the key's host parts are globs ('*' per part), the
// ports are equal, and the key's path is a prefix of the repository's.
func urlsMatch(key, repo string) bool {
	keyURL, err := url.Parse("https://" + key)
	if err != nil {
		return false
	}
	repoURL, err := url.Parse("https://" + repo)
	if err != nil {
		return false
	}
	keyParts, keyPort := splitHost(keyURL.Host)
	repoParts, repoPort := splitHost(repoURL.Host)
	if keyPort != repoPort || len(keyParts) != len(repoParts) || !strings.HasPrefix(repoURL.Path, keyURL.Path) {
		return false
	}
	for i := range keyParts {
		if ok, err := filepath.Match(keyParts[i], repoParts[i]); err != nil || !ok {
			return false
		}
	}
	return true
}

func splitHost(hostport string) (parts []string, port string) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, ""
	}
	return strings.Split(host, "."), port
}

// File is a credentials file that is read again when it changes (size or modification time),
// so that rotated tokens are picked up without a restart. A file that turns unreadable or
// invalid keeps the last good logins, and the error is logged once per change.
type File struct {
	path string

	// lock guards the fields below.
	lock    sync.Mutex
	keyring *Keyring
	size    int64
	modTime time.Time
	failed  bool
}

// Open reads a credentials file; it must be valid at start.
func Open(path string) (*File, error) {
	f := &File{path: path}
	info, data, err := read(path)
	if err != nil {
		return nil, err
	}
	if f.keyring, err = Parse(path, data); err != nil {
		return nil, err
	}
	f.size, f.modTime = info.Size(), info.ModTime()
	return f, nil
}

// For returns the login for a normalized reference from the current file. It reads no file and
// runs nothing, so ctx goes unused; it is there to make File a keeper.CredentialSource.
func (f *File) For(_ context.Context, normalizedRef string) *runtimeapi.AuthConfig {
	if f == nil {
		return nil
	}
	return f.current().For(normalizedRef)
}

// String lists the registries of the current file.
func (f *File) String() string {
	if f == nil {
		return "no registry credentials"
	}
	return f.current().String()
}

func (f *File) current() *Keyring {
	f.lock.Lock()
	defer f.lock.Unlock()
	stat, err := os.Stat(f.path)
	if err == nil && stat.Size() == f.size && stat.ModTime().Equal(f.modTime) {
		return f.keyring
	}
	info, data, err := read(f.path)
	var keyring *Keyring
	if err == nil {
		keyring, err = Parse(f.path, data)
	}
	if err != nil {
		if !f.failed {
			klog.ErrorS(err, "Registry credentials changed but cannot be used; keeping the previous ones", "path", f.path)
		}
		f.failed = true
		return f.keyring
	}
	klog.InfoS("Registry credentials reloaded", "path", f.path, "registries", len(keyring.index))
	f.keyring, f.size, f.modTime, f.failed = keyring, info.Size(), info.ModTime(), false
	return f.keyring
}

// read reads the credentials file with its file info.
func read(path string) (os.FileInfo, []byte, error) {
	data, info, err := configfile.Read(path)
	if err != nil {
		return nil, nil, fmt.Errorf("registry credentials: %w", err)
	}
	return info, data, nil
}
