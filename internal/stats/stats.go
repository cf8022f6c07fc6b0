// Package stats has the counter type every layer of ustack counts with.
package stats

import "sync/atomic"

// Counter is a monotonically increasing event counter, safe for concurrent
// use. The zero value is zero.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Load reads the value.
func (c *Counter) Load() uint64 { return c.v.Load() }

// Visitor receives named counter values, for listing ("ipv4.in.packets").
type Visitor func(name string, value uint64)
