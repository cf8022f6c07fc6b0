package proto

import "testing"

type rec struct {
	name string
	log  *[]string
	then func()
}

func (r *rec) FlushBatch() {
	*r.log = append(*r.log, r.name)
	if r.then != nil {
		r.then()
	}
}

func TestBatch(t *testing.T) {
	var nilBatch *Batch
	if nilBatch.Defer(&rec{}) || nilBatch.More() {
		t.Fatal("a nil batch deferred work or has more frames")
	}
	b := GetBatch()
	if b.More() {
		t.Fatal("a new batch has more frames")
	}
	b.SetLeft(2)
	if !b.More() {
		t.Fatal("More false with 2 frames left")
	}
	var log []string
	c := &rec{name: "c", log: &log}
	a := &rec{name: "a", log: &log}
	a.then = func() { b.Defer(c) } // work deferred while flushing runs too
	if !b.Defer(a) || !b.Defer(&rec{name: "b", log: &log}) {
		t.Fatal("Defer refused")
	}
	b.Flush()
	if got := len(log); got != 3 || log[0] != "a" || log[1] != "b" || log[2] != "c" {
		t.Fatalf("flushed %v, want [a b c]", log)
	}
	if b.More() || len(b.pending) != 0 {
		t.Fatal("batch not reset by Flush")
	}
	b.Flush()
	if len(log) != 3 {
		t.Fatalf("second Flush ran work again: %v", log)
	}
	PutBatch(b)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Defer on a pooled batch did not panic")
			}
		}()
		b.Defer(&rec{name: "late", log: &log})
	}()

	b = GetBatch()
	b.Defer(&rec{name: "x", log: &log})
	defer func() {
		if recover() == nil {
			t.Error("PutBatch of an unflushed batch did not panic")
		}
	}()
	PutBatch(b)
}
