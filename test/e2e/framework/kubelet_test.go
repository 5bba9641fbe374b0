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
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// The written config holds what was set and nothing else: no "0s" durations or empty objects
// from upstream's non-pointer fields, the fork's fields as set (a budget of 0 included), and it
// reads back strictly into upstream's type plus the fork's fields.
func TestMarshalKubeletConfig(t *testing.T) {
	c := kubeletv1beta1.KubeletConfiguration{
		TypeMeta:          metav1.TypeMeta{APIVersion: "kubelet.config.k8s.io/v1beta1", Kind: "KubeletConfiguration"},
		CgroupRoot:        "/imagecache-x",
		FailCgroupV1:      ptr.To(false),
		ImageMinimumGCAge: metav1.Duration{Duration: time.Second},
		EvictionHard:      map[string]string{"imagefs.available": "99%"},
	}
	data, err := marshalKubeletConfig(c, forkFields{ImageGCExclude: []string{"docker.io/library/nginx"}, ImageGCExcludeBudgetPercent: ptr.To[int32](0)})
	if err != nil {
		t.Fatal(err)
	}
	got := string(data)
	for _, want := range []string{"cgroupRoot: /imagecache-x\n", "failCgroupV1: false\n", "imageMinimumGCAge: 1s\n", "imagefs.available: 99%\n", "- docker.io/library/nginx\n", "imageGCExcludeBudgetPercent: 0\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("config lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{": 0s", "{}", "syncFrequency", "logging", "imageGCExcludeSelectors"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("config has %q, which the test did not set:\n%s", unwanted, got)
		}
	}
	var back struct {
		kubeletv1beta1.KubeletConfiguration `json:",inline"`
		forkFields                          `json:",inline"`
	}
	if err := yaml.UnmarshalStrict(data, &back); err != nil {
		t.Fatalf("the config does not read back strictly: %v\n%s", err, got)
	}
	if back.CgroupRoot != c.CgroupRoot || back.ImageMinimumGCAge != c.ImageMinimumGCAge || len(back.ImageGCExclude) != 1 || back.ImageGCExcludeBudgetPercent == nil {
		t.Errorf("read back %+v", back)
	}
}
