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

// Package dockerconfig reads registry credentials from a docker config.json file.
package dockerconfig

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Credentials maps a registry host ("ghcr.io", "localhost:5000", "docker.io") to its login.
// It never prints secrets: String reports only the hosts.
type Credentials map[string]*runtimeapi.AuthConfig

type file struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
		RegistryToken string `json:"registrytoken"`
	} `json:"auths"`
}

// Load reads path. Errors name the file and the entry, never a secret.
func Load(path string) (Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry credentials: %w", err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("registry credentials %s: not a docker config.json: %v", path, err)
	}
	creds := Credentials{}
	for key, entry := range f.Auths {
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
		host := registryHost(key)
		auth.ServerAddress = host
		creds[host] = auth
	}
	return creds, nil
}

// For returns the login for the registry of a normalized reference, or nil.
func (c Credentials) For(normalizedRef string) *runtimeapi.AuthConfig {
	host, _, _ := strings.Cut(normalizedRef, "/")
	return c[host]
}

// String lists the registries, not the secrets, so that a credential never reaches a log.
func (c Credentials) String() string {
	hosts := make([]string, 0, len(c))
	for host := range c {
		hosts = append(hosts, host)
	}
	return fmt.Sprintf("credentials for %d registries %v", len(hosts), hosts)
}

// registryHost turns a config.json key ("https://index.docker.io/v1/", "ghcr.io") into the
// registry host of normalized references.
func registryHost(key string) string {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	key, _, _ = strings.Cut(key, "/")
	switch key {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return key
}
