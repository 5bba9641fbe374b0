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
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CredentialSource gives the registry login for a normalized reference, nil for none
// (*dockerconfig.File, *credentialplugin.Plugins). ctx is the pull's: a credential plugin still
// running when it ends is killed.
type CredentialSource interface {
	For(ctx context.Context, normalizedRef string) *runtimeapi.AuthConfig
}

// CredentialChain asks each source in turn and returns the first login.
type CredentialChain []CredentialSource

// For returns the first source's login for the reference.
func (c CredentialChain) For(ctx context.Context, normalizedRef string) *runtimeapi.AuthConfig {
	for _, src := range c {
		if auth := src.For(ctx, normalizedRef); auth != nil {
			return auth
		}
	}
	return nil
}
