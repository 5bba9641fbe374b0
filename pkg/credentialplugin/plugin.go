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

// Package credentialplugin runs the kubelet's image credential provider plugins
// (CredentialProviderConfig, exec protocol credentialprovider.kubelet.k8s.io/v1), so that
// image-keeper pulls from ECR, GCR, ACR and private registries with the credentials the kubelet
// would get, from the same config file and plugin directory.
package credentialplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	kubeletconfigv1 "k8s.io/kubelet/config/v1"
	credentialproviderv1 "k8s.io/kubelet/pkg/apis/credentialprovider/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/configfile"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/dockerconfig"
)

const (
	configAPIVersion = "kubelet.config.k8s.io/v1"
	configKind       = "CredentialProviderConfig"
	pluginAPIVersion = "credentialprovider.kubelet.k8s.io/v1"
	// execTimeout bounds one plugin run, as the kubelet's does.
	execTimeout = time.Minute
	// maxOutput caps what a plugin may print.
	maxOutput = 1 << 20
	// waitDelay bounds the wait for a killed plugin's output pipes to close.
	waitDelay = 2 * time.Second
	// maxStderrExcerpt bounds what an error quotes of a failed plugin's stderr.
	maxStderrExcerpt = 200
)

// Plugins are the configured credential providers, tried in order.
type Plugins struct {
	providers []*provider
}

type provider struct {
	kubeletconfigv1.CredentialProvider
	binary string

	// lock guards cache.
	lock  sync.Mutex
	cache map[string]cached
}

type cached struct {
	keyring *dockerconfig.Keyring
	expires time.Time
}

// Load reads a CredentialProviderConfig and checks each provider as the kubelet does; binDir
// holds the plugin binaries, named as the providers.
func Load(configPath, binDir string) (*Plugins, error) {
	data, _, err := configfile.Read(configPath)
	if err != nil {
		return nil, fmt.Errorf("--image-credential-provider-config: %w", err)
	}
	var cfg kubeletconfigv1.CredentialProviderConfig
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return nil, fmt.Errorf("--image-credential-provider-config %s: %v", configPath, err)
	}
	if cfg.APIVersion != configAPIVersion || cfg.Kind != configKind {
		return nil, fmt.Errorf("--image-credential-provider-config %s: apiVersion %q, kind %q: want %s %s", configPath, cfg.APIVersion, cfg.Kind, configAPIVersion, configKind)
	}
	if len(cfg.Providers) == 0 {
		return nil, fmt.Errorf("--image-credential-provider-config %s: providers: at least one is required", configPath)
	}
	p := &Plugins{}
	seen := map[string]bool{}
	for i, cp := range cfg.Providers {
		field := fmt.Sprintf("--image-credential-provider-config %s: providers[%d] %q", configPath, i, cp.Name)
		switch {
		case cp.Name == "" || cp.Name == "." || cp.Name == ".." || strings.ContainsAny(cp.Name, "/ "):
			return nil, fmt.Errorf("%s: name must be a file name in --image-credential-provider-bin-dir", field)
		case seen[cp.Name]:
			return nil, fmt.Errorf("%s: duplicate name", field)
		case cp.APIVersion != pluginAPIVersion:
			return nil, fmt.Errorf("%s: apiVersion %q: want %s", field, cp.APIVersion, pluginAPIVersion)
		case len(cp.MatchImages) == 0:
			return nil, fmt.Errorf("%s: matchImages: at least one is required", field)
		case cp.DefaultCacheDuration == nil || cp.DefaultCacheDuration.Duration < 0:
			return nil, fmt.Errorf("%s: defaultCacheDuration must be set, 0 or more", field)
		case cp.TokenAttributes != nil:
			return nil, fmt.Errorf("%s: tokenAttributes (service account tokens) is not supported: image-keeper pulls for no pod", field)
		}
		seen[cp.Name] = true
		binary := filepath.Join(binDir, cp.Name)
		if info, err := os.Stat(binary); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("%s: no executable %s in --image-credential-provider-bin-dir", field, binary)
		}
		p.providers = append(p.providers, &provider{CredentialProvider: cp, binary: binary, cache: map[string]cached{}})
	}
	return p, nil
}

// For returns the login the first matching provider gives for a normalized reference, or nil.
// A plugin that fails is logged and skipped: a pull without credentials then fails visibly. A
// plugin still running when ctx ends, or after its time limit, is killed with its children.
func (p *Plugins) For(ctx context.Context, normalizedRef string) *runtimeapi.AuthConfig {
	if p == nil {
		return nil
	}
	for _, pr := range p.providers {
		if !pr.matches(normalizedRef) {
			continue
		}
		keyring, err := pr.keyring(ctx, normalizedRef, time.Now())
		if err != nil {
			klog.ErrorS(err, "Image credential provider failed", "provider", pr.Name, "image", normalizedRef)
			continue
		}
		if auth := keyring.For(normalizedRef); auth != nil {
			return auth
		}
	}
	return nil
}

func (pr *provider) matches(ref string) bool {
	for _, pattern := range pr.MatchImages {
		if dockerconfig.Matches(pattern, ref) {
			return true
		}
	}
	return false
}

// keyring returns the provider's answer for an image, from the cache while it is valid.
func (pr *provider) keyring(ctx context.Context, ref string, now time.Time) (*dockerconfig.Keyring, error) {
	repo := dockerconfig.Repository(ref)
	registry, _, _ := strings.Cut(repo, "/")
	pr.lock.Lock()
	for _, key := range []string{"image:" + repo, "registry:" + registry, "global:"} {
		if c, ok := pr.cache[key]; ok && now.Before(c.expires) {
			pr.lock.Unlock()
			return c.keyring, nil
		}
	}
	pr.lock.Unlock()

	resp, err := pr.exec(ctx, ref)
	if err != nil {
		return nil, err
	}
	logins := map[string]*runtimeapi.AuthConfig{}
	for key, auth := range resp.Auth {
		logins[key] = &runtimeapi.AuthConfig{Username: auth.Username, Password: auth.Password}
	}
	keyring, err := dockerconfig.NewKeyring(logins)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", pr.Name, err)
	}
	duration := pr.DefaultCacheDuration.Duration
	if resp.CacheDuration != nil {
		duration = resp.CacheDuration.Duration
	}
	if duration > 0 {
		var key string
		switch resp.CacheKeyType {
		case credentialproviderv1.ImagePluginCacheKeyType:
			key = "image:" + repo
		case credentialproviderv1.RegistryPluginCacheKeyType:
			key = "registry:" + registry
		case credentialproviderv1.GlobalPluginCacheKeyType:
			key = "global:"
		}
		pr.lock.Lock()
		pr.cache[key] = cached{keyring: keyring, expires: now.Add(duration)}
		pr.lock.Unlock()
	}
	return keyring, nil
}

// exec runs the plugin with a CredentialProviderRequest on stdin, as the kubelet does.
func (pr *provider) exec(ctx context.Context, image string) (*credentialproviderv1.CredentialProviderResponse, error) {
	request, err := json.Marshal(credentialproviderv1.CredentialProviderRequest{
		TypeMeta: metav1TypeMeta("CredentialProviderRequest"),
		Image:    image,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, execTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, pr.binary, pr.Args...)
	cmd.Env = os.Environ()
	for _, e := range pr.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	// The plugin runs in a process group of its own, which is killed as a whole at the time
	// limit or when the pull is cancelled; a child that keeps the plugin's stdout open is not
	// waited for more than waitDelay after that.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	var stdout, stderr limitedBuffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(request), &stdout, &stderr
	err = cmd.Run()
	if cmd.Process != nil {
		// Whatever the plugin left running (a child holding its output) goes with it.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// A plugin that answered and exited 0, but whose child kept its output open past
	// waitDelay, gave its answer: take it.
	answered := errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success()
	if err != nil && !answered {
		return nil, fmt.Errorf("plugin %s: %v; stderr: %s", pr.Name, err, stderrExcerpt(stderr.Bytes()))
	}
	var resp credentialproviderv1.CredentialProviderResponse
	if err := json.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return nil, fmt.Errorf("plugin %s: not a CredentialProviderResponse: %v", pr.Name, err)
	}
	if resp.APIVersion != pluginAPIVersion || resp.Kind != "CredentialProviderResponse" {
		return nil, fmt.Errorf("plugin %s: answered apiVersion %q kind %q: want %s CredentialProviderResponse", pr.Name, resp.APIVersion, resp.Kind, pluginAPIVersion)
	}
	switch resp.CacheKeyType {
	case credentialproviderv1.ImagePluginCacheKeyType, credentialproviderv1.RegistryPluginCacheKeyType, credentialproviderv1.GlobalPluginCacheKeyType:
	default:
		return nil, fmt.Errorf("plugin %s: cacheKeyType %q: want Image, Registry or Global", pr.Name, resp.CacheKeyType)
	}
	return &resp, nil
}

// limitedBuffer keeps the first maxOutput bytes a plugin writes and drops the rest. It has no
// ReadFrom (an embedded bytes.Buffer would give it one, which io.Copy prefers to Write, and
// which grows without the limit).
type limitedBuffer struct{ buf bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.buf.Len(); room < len(p) {
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) Bytes() []byte { return b.buf.Bytes() }

// stderrExcerpt is what an error says of a failed plugin's stderr: its first line, at most
// maxStderrExcerpt bytes, quoted, so that a long or hostile output (escape sequences) is
// neither echoed whole nor raw.
func stderrExcerpt(stderr []byte) string {
	stderr = bytes.TrimSpace(stderr)
	line, _, _ := bytes.Cut(stderr, []byte("\n"))
	if len(line) > maxStderrExcerpt {
		line = line[:maxStderrExcerpt]
	}
	if rest := len(stderr) - len(line); rest > 0 {
		return fmt.Sprintf("%q...(%d more bytes of stderr)", line, rest)
	}
	return fmt.Sprintf("%q", line)
}

func metav1TypeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: pluginAPIVersion, Kind: kind}
}
