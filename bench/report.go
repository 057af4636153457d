package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// goal says which way a row's ratio must go.
type goal int

const (
	info    goal = iota // no target: context for the rows around it
	atMost              // subject ÷ reference ≤ target (a cost ratio)
	atLeast             // reference ÷ subject ≥ target (a speed-up)
)

// row is one line of the table: a subject (hermes-s6) measured against a
// reference (the baseline, or hermes-s6 itself in another setting).
type row struct {
	id, name string
	subject  []time.Duration
	ref      []time.Duration
	// refName labels the reference column when it is not the baseline.
	refName string
	goal    goal
	target  float64
	// speedup orients an info row's ratio like an atLeast row's.
	speedup bool
	// paired: subject[i] and ref[i] were measured next to each other.
	paired bool
	// fail forces FAIL with a reason (a correctness check of the row).
	fail string
	// err: the benchmark could not run. skip: it was not run, and why.
	err  error
	skip string
	note string
}

type verdict string

const (
	verdictPass  verdict = "PASS"
	verdictFail  verdict = "FAIL"
	verdictInfo  verdict = "info"
	verdictError verdict = "ERROR"
	verdictSkip  verdict = "skipped"
)

// ratio is the row's figure of merit: subject/ref for atMost and info,
// ref/subject for atLeast; NaN when a side has no samples.
func (r row) ratio() float64 {
	s, f := median(r.subject), median(r.ref)
	if len(r.subject) == 0 || len(r.ref) == 0 || s <= 0 || f <= 0 {
		return math.NaN()
	}
	if r.goal == atLeast || r.speedup {
		return float64(f) / float64(s)
	}
	return float64(s) / float64(f)
}

// pairRatios are the per-pair ratios, oriented like ratio.
func (r row) pairRatios() []float64 {
	if !r.paired || len(r.subject) != len(r.ref) {
		return nil
	}
	out := make([]float64, 0, len(r.subject))
	for i := range r.subject {
		s, f := float64(r.subject[i]), float64(r.ref[i])
		if s <= 0 || f <= 0 {
			continue
		}
		if r.goal == atLeast || r.speedup {
			out = append(out, f/s)
		} else {
			out = append(out, s/f)
		}
	}
	return out
}

func (r row) verdict() verdict {
	switch {
	case r.err != nil:
		return verdictError
	case r.skip != "":
		return verdictSkip
	case r.fail != "":
		return verdictFail
	case r.goal == info:
		return verdictInfo
	}
	x := r.ratio()
	switch {
	case math.IsNaN(x):
		return verdictError
	case r.goal == atMost && x <= r.target, r.goal == atLeast && x >= r.target:
		return verdictPass
	}
	return verdictFail
}

// quantile is the nearest-rank q-quantile (0 < q ≤ 1) of xs.
func quantile[T time.Duration | float64](xs []T, q float64) T {
	if len(xs) == 0 {
		return 0
	}
	s := append([]T(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// median is the middle value, the mean of the two middle ones for an even
// count.
func median[T time.Duration | float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := append([]T(nil), xs...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// dur prints a duration with three significant digits.
func dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fms", float64(d)/1e6)
}

// cell is "median (p10–p90)" of one side.
func cell(ds []time.Duration) string {
	if len(ds) == 0 {
		return "—"
	}
	return fmt.Sprintf("%s (%s–%s)", dur(median(ds)), dur(quantile(ds, 0.1)), dur(quantile(ds, 0.9)))
}

func (r row) ratioCell() string {
	x := r.ratio()
	if math.IsNaN(x) {
		return "—"
	}
	s := fmt.Sprintf("%.2f×", x)
	if pr := r.pairRatios(); len(pr) > 0 {
		s += fmt.Sprintf(" (%.2f–%.2f)", quantile(pr, 0.1), quantile(pr, 0.9))
	}
	return s
}

func (r row) targetCell() string {
	switch r.goal {
	case atMost:
		return fmt.Sprintf("≤ %.2f×", r.target)
	case atLeast:
		return fmt.Sprintf("≥ %.2f×", r.target)
	}
	return ""
}

// printTable writes the result table, then the notes, skips and errors.
func printTable(w io.Writer, rows []row) {
	header := []string{"id", "benchmark", "n", "hermes-s6 median (p10–p90)", "reference median (p10–p90)", "ratio (pairs p10–p90)", "target", "result"}
	var lines [][]string
	for _, r := range rows {
		n := ""
		if len(r.subject) > 0 {
			n = fmt.Sprint(len(r.subject))
		}
		ref := cell(r.ref)
		if r.refName != "" && len(r.ref) > 0 {
			ref = r.refName + ": " + ref
		}
		res := string(r.verdict())
		lines = append(lines, []string{r.id, r.name, n, cell(r.subject), ref, r.ratioCell(), r.targetCell(), res})
	}
	widths := make([]int, len(header))
	for _, l := range append([][]string{header}, lines...) {
		for i, c := range l {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	pr := func(l []string) {
		var b strings.Builder
		for i, c := range l {
			if i > 0 {
				b.WriteString("  ")
			}
			pad := widths[i] - len([]rune(c))
			if i == 2 { // right-align n
				b.WriteString(strings.Repeat(" ", pad) + c)
			} else if i < len(l)-1 {
				b.WriteString(c + strings.Repeat(" ", pad))
			} else {
				b.WriteString(c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	fmt.Fprintln(w)
	pr(header)
	rule := make([]string, len(header))
	for i := range rule {
		rule[i] = strings.Repeat("─", widths[i])
	}
	pr(rule)
	for _, l := range lines {
		pr(l)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "ratio: hermes-s6 ÷ reference for ≤ targets (its cost), reference ÷ hermes-s6 for ≥ targets (its speed-up; info rows under them too);")
	fmt.Fprintln(w, "ratio of the medians, with the p10–p90 of the per-pair ratios (each pair measured back to back, order alternating).")
	for _, r := range rows {
		switch {
		case r.err != nil:
			fmt.Fprintf(w, "%s ERROR: %v\n", r.id, r.err)
		case r.skip != "":
			fmt.Fprintf(w, "%s skipped: %s\n", r.id, r.skip)
		}
		if r.fail != "" {
			fmt.Fprintf(w, "%s FAIL: %s\n", r.id, r.fail)
		}
		if r.note != "" {
			fmt.Fprintf(w, "%s: %s\n", r.id, r.note)
		}
	}
}
