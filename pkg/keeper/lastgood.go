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
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/configfile"
)

// LastGoodFile is the copy of the last config that loaded, in the state directory.
const LastGoodFile = "last-good-config.yaml"

// LastGood keeps, in a state directory (--state-dir), a copy of the last image-keeper config
// file that loaded, so that a config broken while image-keeper was down (a bad ConfigMap rollout,
// then a reboot) does not leave the node keeping nothing: image-keeper starts from the copy and
// says the config is stale, until a good one loads.
type LastGood struct {
	// Dir is the state directory; it must exist.
	Dir string
}

func (l *LastGood) path() string { return filepath.Join(l.Dir, LastGoodFile) }

// Save keeps data as the last good config, durably, when it differs from the copy.
func (l *LastGood) Save(data []byte) error {
	if l == nil || data == nil {
		return nil
	}
	if saved, _, err := configfile.Read(l.path()); err == nil && bytes.Equal(saved, data) {
		return nil
	}
	if err := configfile.WriteDurable(l.path(), data); err != nil {
		return fmt.Errorf("--state-dir: save the last good config: %w", err)
	}
	return nil
}

// LoadLastGood loads src; when that fails and src has a config file, it loads src with the
// saved copy in its place. It returns what to run with, and stale, the error of the current
// config, when that is the copy. err is set only when neither loads: the current config's error,
// and why the copy did not help (there is none: no good config was ever loaded here).
func LoadLastGood(src Sources, l *LastGood) (w *Wanted, stale, err error) {
	w, err = Load(src)
	if err == nil || l == nil || src.ConfigFile == "" {
		return w, nil, err
	}
	if _, statErr := os.Stat(l.path()); errors.Is(statErr, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w (and no last good config in %s: none has loaded on this node yet)", err, l.Dir)
	}
	fallback := src
	fallback.ConfigFile = l.path()
	w, fallbackErr := Load(fallback)
	if fallbackErr != nil {
		// The same error from both is not the config's (a broken kubelet config): say it once.
		if strings.ReplaceAll(fallbackErr.Error(), l.path(), src.ConfigFile) == err.Error() {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w (the last good config does not load either: %w)", err, fallbackErr)
	}
	return w, err, nil
}
