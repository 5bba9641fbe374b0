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

package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// PrintJSON writes the report as indented JSON.
func PrintJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// PrintTable writes the report for people: one line per image, one per allowlist entry, and
// the budget. Names and entries are quoted when they hold control characters.
func PrintTable(w io.Writer, r *Report) error {
	// References given on stdin have no ID and no size: their columns are left out.
	showID, showSize := false, false
	for _, x := range r.Images {
		showID, showSize = showID || x.ID != "", showSize || x.Size > 0
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(name, id, size, decision, by string) {
		cols := []string{name}
		if showID {
			cols = append(cols, id)
		}
		if showSize {
			cols = append(cols, size)
		}
		fmt.Fprintln(tw, strings.Join(append(cols, decision, by), "\t"))
	}
	row("IMAGE", "ID", "SIZE", "DECISION", "BY")
	for _, x := range r.Images {
		size := "-"
		if x.Size > 0 {
			size = FormatBytes(x.Size)
		}
		decision := string(x.Decision)
		switch {
		case x.OverBudget:
			decision += " (over budget)"
		case x.AtRisk:
			decision += " (at risk)"
		}
		by := "-"
		if x.Entry != "" {
			by = x.Field + " " + strconv.Quote(x.Entry)
			if x.MatchedBy != "" && x.MatchedBy != x.Name() {
				by += " by " + safe(x.MatchedBy)
			}
		}
		if x.Decision == LabelsUnknown {
			by = "labels unreadable: " + safe(x.LabelsError)
		}
		row(safe(x.Name()), shortID(x.ID), size, decision, by)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Entries) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ENTRY\tFIELD\tIMAGES")
		for _, e := range r.Entries {
			note := ""
			if e.Images == 0 {
				note = "  matches nothing"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d%s\n", strconv.Quote(e.Entry), e.Field, e.Images, note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if r.GateOff {
		fmt.Fprintln(w, "\nThe ImageGCExclusion feature gate is off: the kubelet keeps none of these; BY shows what would keep them.")
	}
	if b := r.Budget; b != nil {
		switch {
		case b.CapacityBytes == 0:
			fmt.Fprintf(w, "\nBudget: imageGCExcludeBudgetPercent %d%%, not evaluated: the image filesystem's capacity is not known.\n", b.Percent)
		case b.Over():
			fmt.Fprintf(w, "\nBudget: kept images hold %s, over imageGCExcludeBudgetPercent %d%% of %s (%s): if none was used since the kubelet started, it collects the %d marked (over budget), those of the latest entries; an image used since then ranks first, and the kubelet collects at least %d of them.\n",
				FormatBytes(b.KeptBytes), b.Percent, FormatBytes(b.CapacityBytes), FormatBytes(b.Bytes), b.Collects, b.AtLeast)
		default:
			fmt.Fprintf(w, "\nBudget: kept images hold %s of %s (imageGCExcludeBudgetPercent %d%% of %s).\n",
				FormatBytes(b.KeptBytes), FormatBytes(b.Bytes), b.Percent, FormatBytes(b.CapacityBytes))
		}
	}
	return nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	if id == "" {
		return "-"
	}
	return id
}

// safe quotes s when it holds anything but printable characters.
func safe(s string) string {
	for _, r := range s {
		if !strconv.IsPrint(r) || r == '\t' {
			return strconv.Quote(s)
		}
	}
	return s
}
