// Package route is ustack's routing table: the network layer's answer to
// "which interface and next hop reach this address". It holds IPv4 and IPv6
// routes, matches by longest prefix with a binary trie per family (lookups
// cost at most one step per address bit, never a scan of the routes), breaks
// ties by metric, and lets lookups run without locks: writers build a new
// immutable trie and publish it atomically.
//
// It knows nothing of interfaces beyond their index and does no I/O; source
// address selection needs the interfaces' addresses and lives with the
// network protocols that have them.
package route

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// Origin says where a route came from.
type Origin uint8

const (
	OriginStatic    Origin = iota // configured
	OriginConnected               // from an interface address
	OriginRA                      // from a router advertisement
	OriginRedirect                // from an ICMP redirect
)

func (o Origin) String() string {
	switch o {
	case OriginStatic:
		return "static"
	case OriginConnected:
		return "connected"
	case OriginRA:
		return "ra"
	case OriginRedirect:
		return "redirect"
	}
	return fmt.Sprintf("origin(%d)", uint8(o))
}

// Route is one entry of the table.
type Route struct {
	// Dst is the destination prefix (masked); 0.0.0.0/0 or ::/0 is a
	// default route.
	Dst netip.Prefix
	// Gateway is the next hop; the zero Addr means Dst is on-link.
	Gateway netip.Addr
	// IfIndex is the outgoing interface.
	IfIndex int
	// Metric: lower wins among routes with the same prefix length.
	Metric int
	// Src is the preferred source address; the zero Addr lets the network
	// layer choose.
	Src netip.Addr
	// MTU overrides the interface MTU when non-zero.
	MTU    int
	Origin Origin
}

// IsDefault reports whether r is a default route.
func (r Route) IsDefault() bool { return r.Dst.Bits() == 0 }

func (r Route) String() string {
	s := r.Dst.String()
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	s += fmt.Sprintf(" if %d metric %d %s", r.IfIndex, r.Metric, r.Origin)
	if r.Src.IsValid() {
		s += " src " + r.Src.String()
	}
	return s
}

// same reports whether two routes are the same entry (what Delete matches).
func (r Route) same(o Route) bool {
	return r.Dst == o.Dst && r.Gateway == o.Gateway && r.IfIndex == o.IfIndex && r.Metric == o.Metric
}

// Errors.
var (
	ErrExists   = errors.New("route: route exists")
	ErrNotFound = errors.New("route: no such route")
	ErrInvalid  = errors.New("route: invalid route")
)

// Table is a routing table for both families. The zero value is empty and
// ready to use. Lookup is lock-free; changes serialize on a mutex.
type Table struct {
	mu     sync.Mutex
	routes []Route
	v4, v6 atomic.Pointer[node]
	gen    atomic.Uint64
}

// Add inserts r. Dst is masked. A route equal in prefix, gateway, interface
// and metric is refused with ErrExists.
func (t *Table) Add(r Route) error {
	if !r.Dst.IsValid() || r.IfIndex <= 0 {
		return fmt.Errorf("%w: %v", ErrInvalid, r)
	}
	if r.Gateway.IsValid() && r.Gateway.Is4() != r.Dst.Addr().Is4() {
		return fmt.Errorf("%w: gateway family differs from destination: %v", ErrInvalid, r)
	}
	r.Dst = r.Dst.Masked()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range t.routes {
		if o.same(r) {
			return ErrExists
		}
	}
	t.routes = append(t.routes, r)
	t.store(r.Dst, insert(t.root(r.Dst), r))
	return nil
}

// Delete removes the route matching r's prefix, gateway, interface and
// metric.
func (t *Table) Delete(r Route) error {
	r.Dst = r.Dst.Masked()
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, o := range t.routes {
		if o.same(r) {
			t.routes = slices.Delete(t.routes, i, i+1)
			t.store(r.Dst, remove(t.root(r.Dst), r))
			return nil
		}
	}
	return ErrNotFound
}

// DeleteFunc removes every route for which del returns true and reports how
// many went.
func (t *Table) DeleteFunc(del func(Route) bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.routes)
	t.routes = slices.DeleteFunc(t.routes, del)
	if n != len(t.routes) {
		t.publish()
	}
	return n - len(t.routes)
}

// Routes returns a copy of every route, sorted by family, prefix length
// (longest first), prefix, then metric.
func (t *Table) Routes() []Route {
	t.mu.Lock()
	out := slices.Clone(t.routes)
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Route) int {
		if a.Dst.Addr().Is4() != b.Dst.Addr().Is4() {
			if a.Dst.Addr().Is4() {
				return -1
			}
			return 1
		}
		if a.Dst.Bits() != b.Dst.Bits() {
			return b.Dst.Bits() - a.Dst.Bits()
		}
		if c := a.Dst.Addr().Compare(b.Dst.Addr()); c != 0 {
			return c
		}
		return a.Metric - b.Metric
	})
	return out
}

// Generation changes whenever the table does; callers caching lookups
// compare it.
func (t *Table) Generation() uint64 { return t.gen.Load() }

// Lookup returns the best route to dst: longest prefix, then lowest metric.
func (t *Table) Lookup(dst netip.Addr) (Route, bool) {
	return t.LookupFunc(dst, nil)
}

// LookupFunc is Lookup restricted to the routes ok accepts (for example those
// of one interface); ok may be nil.
func (t *Table) LookupFunc(dst netip.Addr, ok func(*Route) bool) (Route, bool) {
	dst = dst.Unmap()
	root := t.v6.Load()
	if dst.Is4() {
		root = t.v4.Load()
	}
	var best *Route
	bits := dst.AsSlice()
	n := root
	for depth := 0; n != nil; depth++ {
		for i := range n.routes {
			if ok == nil || ok(&n.routes[i]) {
				best = &n.routes[i]
				break // routes at a node are sorted by metric
			}
		}
		if depth == len(bits)*8 {
			break
		}
		bit := bits[depth/8] >> (7 - depth%8) & 1
		n = n.child[bit]
	}
	if best == nil {
		return Route{}, false
	}
	return *best, true
}

// node is a binary trie node; the routes at depth d have prefix length d.
// Published nodes are never changed: a change copies the nodes on the path
// to the changed one (path copying), so a change costs one step per prefix
// bit and readers keep the version they loaded.
type node struct {
	child  [2]*node
	routes []Route // sorted by metric
}

func (t *Table) root(p netip.Prefix) *node {
	if p.Addr().Is4() {
		return t.v4.Load()
	}
	return t.v6.Load()
}

func (t *Table) store(p netip.Prefix, n *node) {
	if p.Addr().Is4() {
		t.v4.Store(n)
	} else {
		t.v6.Store(n)
	}
	t.gen.Add(1)
}

// publish rebuilds both tries from t.routes (after bulk deletions).
// Callers hold t.mu.
func (t *Table) publish() {
	var v4, v6 *node
	for _, r := range t.routes {
		if r.Dst.Addr().Is4() {
			v4 = insert(v4, r)
		} else {
			v6 = insert(v6, r)
		}
	}
	t.v4.Store(v4)
	t.v6.Store(v6)
	t.gen.Add(1)
}

func bit(p netip.Prefix, d int) int {
	a := p.Addr().AsSlice()
	return int(a[d/8] >> (7 - d%8) & 1)
}

// insert returns a trie with r added, copying the path to its node.
func insert(n *node, r Route) *node { return insertAt(n, r, 0) }

func insertAt(n *node, r Route, d int) *node {
	c := &node{}
	if n != nil {
		*c = *n
	}
	if d == r.Dst.Bits() {
		c.routes = append(slices.Clone(c.routes), r)
		slices.SortStableFunc(c.routes, func(a, b Route) int { return a.Metric - b.Metric })
		return c
	}
	b := bit(r.Dst, d)
	c.child[b] = insertAt(c.child[b], r, d+1)
	return c
}

// remove returns a trie without r, copying the path to its node and
// dropping nodes left empty.
func remove(n *node, r Route) *node { return removeAt(n, r, 0) }

func removeAt(n *node, r Route, d int) *node {
	if n == nil {
		return nil
	}
	c := *n
	if d == r.Dst.Bits() {
		c.routes = slices.DeleteFunc(slices.Clone(c.routes), func(o Route) bool { return o.same(r) })
	} else {
		b := bit(r.Dst, d)
		c.child[b] = removeAt(c.child[b], r, d+1)
	}
	if len(c.routes) == 0 && c.child[0] == nil && c.child[1] == nil {
		return nil
	}
	return &c
}
