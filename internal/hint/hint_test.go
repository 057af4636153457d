package hint

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOf(t *testing.T) {
	base := errors.New("base")
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"nil", nil, nil},
		{"none", base, nil},
		{"one", With(base, "a"), []string{"a"}},
		{"nested, outermost first", With(fmt.Errorf("wrap: %w", With(base, "inner")), "outer"), []string{"outer", "inner"}},
		{"every branch of a join", errors.Join(With(base, "first"), errors.New("plain"), fmt.Errorf("x: %w", With(base, "third"))), []string{"first", "third"}},
		{"join under a hint", With(errors.Join(With(base, "b1"), With(base, "b2")), "top"), []string{"top", "b1", "b2"}},
		{"multi-%w", fmt.Errorf("%w; %w", With(base, "left"), With(base, "right")), []string{"left", "right"}},
		{"the same hint once", errors.Join(With(base, "same"), With(base, "same")), []string{"same"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Of(tc.err)); diff != "" {
				t.Errorf("Of (-want +got):\n%s", diff)
			}
		})
	}
	if With(nil, "x") != nil {
		t.Error("With(nil) is not nil")
	}
	if err := With(base, "h"); !errors.Is(err, base) {
		t.Error("With breaks errors.Is")
	}
}
