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
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves /healthz (the process is up), /readyz (every wanted image is present) and
// /metrics; with status, also /status (JSON of Status). /status names the wanted images, the
// kubelet's allowlist and the runtime's errors, and costs a few hundred bytes an image: serve it
// on loopback only (image-keeper's --listen when that is loopback, --status-listen).
func (k *Keeper) Handler(status bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		// An unreachable registry is not a reason to restart image-keeper; a runtime unreachable
		// for longer than UnhealthyAfter is (the pod may hold a stale socket).
		if ok, reason := k.Healthy(time.Now()); !ok {
			http.Error(w, reason, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ready, reason := k.Status().Ready()
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, reason)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(k.metrics.Registry, promhttp.HandlerOpts{}))
	if status {
		mux.HandleFunc("/status", k.serveStatus)
	} else {
		mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "/status is served on loopback only, at image-keeper's --status-listen address (the shipped DaemonSet: kubectl exec ... -- image-keeper status --server http://127.0.0.1:10357)", http.StatusNotFound)
		})
	}
	return mux
}

const (
	// maxStatusAnswers bounds the /status answers being written at once: each holds the encoded
	// status (about 200 bytes an image) until the client has read it.
	maxStatusAnswers = 4
	// statusFresh is how long an encoded /status answer is served again: a burst of requests
	// costs one encoding a second.
	statusFresh = time.Second
)

// serveStatus answers /status from an encoding at most statusFresh old, with at most
// maxStatusAnswers answers in flight; more get 503 at once.
func (k *Keeper) serveStatus(w http.ResponseWriter, _ *http.Request) {
	select {
	case k.statusSlots <- struct{}{}:
		defer func() { <-k.statusSlots }()
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("%d /status answers in flight already; retry", maxStatusAnswers), http.StatusServiceUnavailable)
		return
	}
	body, err := k.encodedStatus(time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (k *Keeper) encodedStatus(now time.Time) ([]byte, error) {
	k.statusMu.Lock()
	defer k.statusMu.Unlock()
	if k.statusJSON != nil && now.Sub(k.statusAt) < statusFresh && !now.Before(k.statusAt) {
		return k.statusJSON, nil
	}
	body, err := json.MarshalIndent(k.Status(), "", "  ")
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	k.statusJSON, k.statusAt = body, now
	return k.statusJSON, nil
}

// PrintStatus writes the status table that `image-keeper status` shows.
func PrintStatus(out io.Writer, s Status) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tPRESENT\tIMAGE ID\tSIZE\tPROTECTED\tLAST PULL\tLAST ERROR")
	for _, img := range s.Images {
		present := "no"
		if img.Present {
			present = "yes"
		}
		lastPull := "-"
		if !img.LastPull.IsZero() {
			lastPull = img.LastPull.UTC().Format(time.RFC3339)
		}
		// Every string may come from a server (status --server): none reaches the terminal raw.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", QuoteControl(img.Reference), present, QuoteControl(shortID(img.ImageID)),
			humanSize(img.Size), oneLine(img.Protected.String()), lastPull, orDash(oneLine(img.LastError)))
	}
	_ = tw.Flush()
	if s.RuntimeError != "" {
		fmt.Fprintf(out, "\nruntime: %s\n", QuoteControl(s.RuntimeError))
	}
	if s.ConfigError != "" {
		fmt.Fprintf(out, "\nthe config does not load (the previous configuration is in force): %s\n", QuoteControl(s.ConfigError))
	}
	if len(s.NotPullable) > 0 {
		fmt.Fprintf(out, "\nkubelet allowlist entries that protect but cannot be pulled: %s\n", QuoteControl(strings.Join(s.NotPullable, ", ")))
	}
	if open := s.OpenPrivate(); len(open) > 0 {
		policy := s.PullCredentialsPolicy
		if policy == "" {
			policy = "unknown: no --kubelet-config; the kubelet's default is " + DefaultPullCredentialsPolicy
		}
		fmt.Fprintf(out, "\n%d images were pulled with a registry login, not by the kubelet: under its imagePullCredentialsVerificationPolicy (%s) any pod on this node may run them without pull secrets: %s\n",
			len(open), QuoteControl(policy), QuoteControl(strings.Join(open, ", ")))
	}
	if s.PullSlot != "" {
		fmt.Fprintf(out, "\npull slot: %s\n", QuoteControl(s.PullSlot))
	}
	if s.Holder != "" {
		fmt.Fprintf(out, "\nholder mode: image volumes of the %s keep the images\n", QuoteControl(s.Holder))
	}
	_, reason := s.Ready()
	fmt.Fprintf(out, "\n%s\n", QuoteControl(reason))
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return orDash(id)
}

func humanSize(b uint64) string {
	switch {
	case b == 0:
		return "-"
	case b < 1<<20:
		return fmt.Sprintf("%.1fKiB", float64(b)/(1<<10))
	case b < 1<<30:
		return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.1fGiB", float64(b)/(1<<30))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine makes text from a runtime or a registry fit a terminal table: QuoteControl, then cut
// at 120 characters.
func oneLine(s string) string {
	s = QuoteControl(s)
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return s
}

// QuoteControl makes text from a runtime, a registry or a server safe for a terminal: newlines and tabs
// become spaces, other control characters (escape sequences) are quoted as \xNN.
func QuoteControl(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, "\\x%02x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
