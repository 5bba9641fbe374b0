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

package framework

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
)

// The config the tests write is one image-keeper loads as written.
func TestWriteKeeperConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "image-keeper.yaml")
	images := []string{"127.0.0.1:5000/e2e/app:1", "127.0.0.1:5000/e2e/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	if err := WriteKeeperConfig(path, images...); err != nil {
		t.Fatal(err)
	}
	wanted, err := keeper.Load(keeper.Sources{ConfigFile: path})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, img := range wanted.Images {
		got = append(got, img.Reference)
	}
	if !slices.Equal(got, images) {
		t.Errorf("image-keeper loaded %q; want %q", got, images)
	}
}
