package seqnum

import "testing"

func TestCompareWraps(t *testing.T) {
	tests := []struct {
		v, w Value
		less bool
	}{
		{1, 2, true},
		{2, 1, false},
		{0xffffffff, 0, true}, // wraps
		{0, 0xffffffff, false},
		{0x7fffffff, 0x80000000, true},
		{5, 5, false},
	}
	for _, tc := range tests {
		if got := tc.v.LessThan(tc.w); got != tc.less {
			t.Errorf("%d.LessThan(%d) = %v, want %v", tc.v, tc.w, got, tc.less)
		}
		if got := tc.w.GreaterThan(tc.v); got != tc.less {
			t.Errorf("%d.GreaterThan(%d) = %v, want %v", tc.w, tc.v, got, tc.less)
		}
	}
	if !Value(5).LessThanEq(5) || !Value(5).GreaterThanEq(5) {
		t.Errorf("equal values must compare as <= and >=")
	}
}

func TestWindow(t *testing.T) {
	first := Value(0xfffffff0)
	if !first.Add(0x20).InWindow(first, 0x21) || first.Add(0x21).InWindow(first, 0x21) {
		t.Errorf("window across the wrap")
	}
	if Value(10).InWindow(10, 0) {
		t.Errorf("an empty window holds nothing")
	}
	if d := Value(0xfffffffe).Size(3); d != 5 {
		t.Errorf("Size across the wrap = %d, want 5", d)
	}
	if Max(0xffffffff, 1) != 1 || Min(0xffffffff, 1) != 0xffffffff {
		t.Errorf("Max/Min across the wrap")
	}
	if !Overlap(0xfffffffe, 4, 1, 1) || Overlap(0, 10, 10, 5) {
		t.Errorf("Overlap")
	}
}
