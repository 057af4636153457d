package main

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func ms(xs ...float64) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = time.Duration(x * float64(time.Millisecond))
	}
	return out
}

func TestQuantiles(t *testing.T) {
	xs := ms(5, 1, 4, 2, 3)
	if got := median(xs); got != ms(3)[0] {
		t.Errorf("median = %v, want 3ms", got)
	}
	if got := median(ms(4, 1, 2, 3)); got != ms(2.5)[0] {
		t.Errorf("even median = %v, want 2.5ms", got)
	}
	if got := quantile(xs, 0.1); got != ms(1)[0] {
		t.Errorf("p10 = %v, want 1ms (nearest rank)", got)
	}
	if got := quantile(xs, 0.9); got != ms(5)[0] {
		t.Errorf("p90 = %v, want 5ms", got)
	}
	if xs[0] != ms(5)[0] {
		t.Error("quantile sorted its input in place")
	}
	if median([]float64{}) != 0 || quantile([]float64{}, 0.5) != 0 {
		t.Error("empty input should give 0")
	}
}

func TestVerdict(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    row
		want verdict
		x    float64
	}{
		{"cost within", row{goal: atMost, target: 2, subject: ms(3, 3), ref: ms(2, 2)}, verdictPass, 1.5},
		{"cost over", row{goal: atMost, target: 1.3, subject: ms(3), ref: ms(2)}, verdictFail, 1.5},
		{"speed-up reached", row{goal: atLeast, target: 3, subject: ms(1), ref: ms(4)}, verdictPass, 4},
		{"speed-up missed", row{goal: atLeast, target: 10, subject: ms(1), ref: ms(4)}, verdictFail, 4},
		{"forced fail", row{goal: atMost, target: 1, subject: ms(1), ref: ms(4), fail: "wrote"}, verdictFail, 0.25},
		{"info", row{subject: ms(1), ref: ms(2)}, verdictInfo, 0.5},
		{"error wins", row{goal: atMost, target: 1, err: errors.New("x")}, verdictError, math.NaN()},
		{"skip", row{goal: atMost, target: 1, skip: "absent", ref: ms(2)}, verdictSkip, math.NaN()},
	} {
		if got := tc.r.verdict(); got != tc.want {
			t.Errorf("%s: verdict %s, want %s", tc.name, got, tc.want)
		}
		if x := tc.r.ratio(); !(x == tc.x || math.IsNaN(x) && math.IsNaN(tc.x)) {
			t.Errorf("%s: ratio %v, want %v", tc.name, x, tc.x)
		}
	}
}

func TestPairRatios(t *testing.T) {
	r := row{goal: atLeast, paired: true, subject: ms(1, 2), ref: ms(4, 4)}
	got := r.pairRatios()
	if len(got) != 2 || got[0] != 4 || got[1] != 2 {
		t.Errorf("pairRatios = %v, want [4 2]", got)
	}
	r.paired = false
	if r.pairRatios() != nil {
		t.Error("unpaired rows have no pair ratios")
	}
}

func TestPrintTable(t *testing.T) {
	var b bytes.Buffer
	printTable(&b, []row{
		{id: "1a", name: "status", goal: atMost, target: 2, paired: true, subject: ms(3, 3), ref: ms(2, 2), note: "a note"},
		{id: "4a", name: "reconcile", goal: atLeast, target: 10, skip: "reconcile not implemented", ref: ms(900)},
	})
	out := b.String()
	for _, want := range []string{"1.50× (1.50–1.50)", "≤ 2.00×", "PASS", "skipped", "900ms", "4a skipped: reconcile not implemented", "1a: a note"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1500 * time.Microsecond: "1.50ms",
		15 * time.Millisecond:   "15.0ms",
		150 * time.Millisecond:  "150ms",
		1500 * time.Millisecond: "1.50s",
		15 * time.Second:        "15.0s",
	} {
		if got := dur(d); got != want {
			t.Errorf("dur(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestChanged(t *testing.T) {
	a := map[string]string{"x": "1", "y": "1", "z": "1"}
	b := map[string]string{"x": "1", "y": "2", "w": "1"}
	got := strings.Join(changed(a, b), ",")
	if got != "w created,y rewritten,z removed" {
		t.Errorf("changed = %q", got)
	}
}

func TestDiffFilesNamesTheSides(t *testing.T) {
	hermes := map[string]string{"run": "a", "notification-fd": "3"}
	baseline := map[string]string{"run": "b", "down": ""}
	got := diffFiles(hermes, baseline)
	want := "down (only the baseline's), notification-fd (only hermes-s6's), run (content or mode)"
	if got != want {
		t.Errorf("diffFiles = %q, want %q", got, want)
	}
}
