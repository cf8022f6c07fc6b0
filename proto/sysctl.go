package proto

import (
	"fmt"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Tunable is a setting with a sysctl-style name ("net.inet.ip.forwarding").
type Tunable struct {
	Name string
	Doc  string
	Get  func() string
	// Set parses and applies a value, or returns an error naming the
	// problem.
	Set func(string) error
}

// Sysctl is a registry of tunables. Protocols register theirs when the
// stack creates them. It is safe for concurrent use.
type Sysctl struct {
	mu sync.RWMutex
	m  map[string]*Tunable
}

// Register adds t. Registering a name twice panics: it is a programming
// error.
func (s *Sysctl) Register(t *Tunable) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]*Tunable)
	}
	if _, dup := s.m[t.Name]; dup {
		panic("proto: tunable registered twice: " + t.Name)
	}
	s.m[t.Name] = t
}

// Get returns the value of a tunable.
func (s *Sysctl) Get(name string) (string, error) {
	t, err := s.lookup(name)
	if err != nil {
		return "", err
	}
	return t.Get(), nil
}

// Set changes a tunable.
func (s *Sysctl) Set(name, value string) error {
	t, err := s.lookup(name)
	if err != nil {
		return err
	}
	if err := t.Set(value); err != nil {
		return fmt.Errorf("sysctl %s: %w", name, err)
	}
	return nil
}

// All returns every tunable, sorted by name.
func (s *Sysctl) All() []*Tunable {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Tunable, 0, len(s.m))
	for _, t := range s.m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Sysctl) lookup(name string) (*Tunable, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.m[name]
	if !ok {
		return nil, fmt.Errorf("sysctl: unknown name %q", name)
	}
	return t, nil
}

// BoolTunable is a tunable over v taking 0/1 (or true/false).
func BoolTunable(name, doc string, v *atomic.Bool) *Tunable {
	return &Tunable{Name: name, Doc: doc,
		Get: func() string {
			if v.Load() {
				return "1"
			}
			return "0"
		},
		Set: func(s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("want 0 or 1, got %q", s)
			}
			v.Store(b)
			return nil
		}}
}

// IntTunable is a tunable over v taking integers in [min, max].
func IntTunable(name, doc string, v *atomic.Int64, min, max int64) *Tunable {
	return &Tunable{Name: name, Doc: doc,
		Get: func() string { return strconv.FormatInt(v.Load(), 10) },
		Set: func(s string) error {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < min || n > max {
				return fmt.Errorf("want an integer in [%d, %d], got %q", min, max, s)
			}
			v.Store(n)
			return nil
		}}
}

// DurationTunable is a tunable over v (nanoseconds) taking Go durations
// ("30s") or plain milliseconds, in [min, max].
func DurationTunable(name, doc string, v *atomic.Int64, min, max time.Duration) *Tunable {
	return &Tunable{Name: name, Doc: doc,
		Get: func() string { return time.Duration(v.Load()).String() },
		Set: func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil {
				ms, err2 := strconv.ParseInt(s, 10, 64)
				if err2 != nil {
					return fmt.Errorf("want a duration such as 30s, got %q", s)
				}
				d = time.Duration(ms) * time.Millisecond
			}
			if d < min || d > max {
				return fmt.Errorf("want a duration in [%v, %v], got %v", min, max, d)
			}
			v.Store(int64(d))
			return nil
		}}
}
