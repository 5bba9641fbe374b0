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

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/explain"
	"github.com/kubelet-imagecache/kubelet-imagecache/pkg/keeper"
)

// Exit statuses of explain.
const (
	explainOK        = 0
	explainFailed    = 1 // the command could not answer
	explainUsage     = 2 // bad flags or input
	explainUnmatched = 3 // --strict: an allowlist entry matches nothing
)

type explainOptions struct {
	kubeletConfig, kubeletConfigDir string
	config                          string // review mode: an allowlist file, references on stdin
	runtimeEndpoint                 string
	output                          string
	strict                          bool
	timeout                         time.Duration
}

// explainMain runs `image-keeper explain` and returns its exit status.
func explainMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var o explainOptions
	fs := pflag.NewFlagSet("image-keeper explain", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.kubeletConfig, "kubelet-config", "", "The kubelet's config file, whose imageGCExclude, imageGCExcludeSelectors, imageGCExcludeBudgetPercent and ImageGCExclusion gate decide.")
	fs.StringVar(&o.kubeletConfigDir, "kubelet-config-dir", "", "The kubelet's --config-dir, merged onto --kubelet-config as the kubelet merges it.")
	fs.StringVar(&o.config, "config", "", "Review an allowlist before rollout: a KubeletConfiguration file (or drop-in) with the allowlist, checked against the references on stdin (one per line, optionally followed by key=value,... labels) instead of the runtime's images.")
	fs.StringVar(&o.runtimeEndpoint, "runtime-endpoint", "unix:///run/containerd/containerd.sock", "CRI endpoint of the container runtime.")
	fs.StringVarP(&o.output, "output", "o", "table", "table or json.")
	fs.BoolVar(&o.strict, "strict", false, "Exit with status 3 when an allowlist entry matches no image (a typo, or an image not on the node).")
	fs.DurationVar(&o.timeout, "timeout", time.Minute, "Give up asking the runtime after this long.")
	if err := fs.Parse(args); err != nil {
		return explainUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "image-keeper explain: "+format+"\n", a...)
		return explainUsage
	}
	switch {
	case fs.NArg() > 0:
		return usage("unexpected arguments %q", fs.Args())
	case o.output != "table" && o.output != "json":
		return usage("--output %q: want table or json", o.output)
	case o.config != "" && (o.kubeletConfig != "" || o.kubeletConfigDir != ""):
		return usage("--config reviews one allowlist file against stdin; it does not go with --kubelet-config or --kubelet-config-dir")
	case o.config == "" && o.kubeletConfig == "":
		return usage("give --kubelet-config (the node's allowlist against the runtime's images) or --config (an allowlist file against references on stdin)")
	case o.timeout <= 0:
		return usage("--timeout %v: must be positive", o.timeout)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	report, warning, err := o.explain(ctx, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "image-keeper explain: %v\n", err)
		var input inputError
		if errors.As(err, &input) {
			return explainUsage
		}
		return explainFailed
	}
	if warning != "" {
		fmt.Fprintf(stderr, "image-keeper explain: %s\n", warning)
	}
	if o.output == "json" {
		err = explain.PrintJSON(stdout, report)
	} else {
		err = explain.PrintTable(stdout, report)
	}
	if err != nil {
		fmt.Fprintf(stderr, "image-keeper explain: %v\n", err)
		return explainFailed
	}
	if unmatched := report.Unmatched(); o.strict && len(unmatched) > 0 {
		for _, e := range unmatched {
			fmt.Fprintf(stderr, "image-keeper explain: %s entry %s matches no image\n", e.Field, strconv.Quote(e.Entry))
		}
		return explainUnmatched
	}
	return explainOK
}

// inputError is bad input (a config or a reference), as opposed to a runtime that does not
// answer.
type inputError struct{ error }

func (e inputError) Unwrap() error { return e.error }

func (o *explainOptions) explain(ctx context.Context, stdin io.Reader) (*explain.Report, string, error) {
	file, dir := o.kubeletConfig, o.kubeletConfigDir
	if o.config != "" {
		file = o.config
	}
	kubelet, err := keeper.ReadKubeletAllowlist(file, dir)
	if err != nil {
		return nil, "", inputError{err}
	}
	al := explain.Allowlist{Patterns: kubelet.Patterns, Selectors: kubelet.Selectors, GateOn: kubelet.GateOn, BudgetPercent: kubelet.BudgetPercent}
	if o.config != "" {
		images, err := explain.ParseReferences(stdin)
		if err != nil {
			return nil, "", inputError{fmt.Errorf("stdin: %w", err)}
		}
		report, err := explain.Explain(al, images, 0)
		if err != nil {
			return nil, "", inputError{fmt.Errorf("%s: %w", o.config, err)}
		}
		return report, "", nil
	}

	rt, err := keeper.NewRuntimeImageService(o.runtimeEndpoint)
	if err != nil {
		return nil, "", inputError{err}
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	images, capacity, capacityErr, err := explain.Node(ctx, rt, len(al.Selectors) > 0)
	if err != nil {
		return nil, "", fmt.Errorf("runtime %s: %w", o.runtimeEndpoint, err)
	}
	report, err := explain.Explain(al, images, capacity)
	if err != nil {
		return nil, "", inputError{fmt.Errorf("kubelet config: %w", err)}
	}
	warning := ""
	if report.Budget != nil && capacityErr != nil {
		warning = "imageGCExcludeBudgetPercent not evaluated: " + capacityErr.Error()
	}
	return report, warning, nil
}
