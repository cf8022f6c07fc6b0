package daemon

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ConfigError is a problem in a configuration file: where (the file and
// the key path, such as "interfaces[0].addresses[1]") and what. Its Error
// is one line.
type ConfigError struct {
	File string // may be empty
	Path string // empty for the document as a whole
	Msg  string
}

func (e *ConfigError) Error() string {
	var parts []string
	for _, s := range []string{e.File, e.Path, e.Msg} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ": ")
}

// node is a YAML node with the key path that leads to it, for errors.
type node struct {
	n    *yaml.Node
	path string
}

func (n node) errorf(format string, args ...any) error {
	return &ConfigError{Path: n.path, Msg: fmt.Sprintf(format, args...)}
}

// deref follows aliases.
func (n node) deref() node {
	for n.n != nil && n.n.Kind == yaml.AliasNode {
		n.n = n.n.Alias
	}
	return n
}

func (n node) isNull() bool {
	n = n.deref()
	return n.n == nil || (n.n.Kind == yaml.ScalarNode && n.n.Tag == "!!null")
}

func (n node) child(key string) node {
	if n.path == "" {
		return node{path: key}
	}
	return node{path: n.path + "." + key}
}

// mapping returns the values of a mapping by key, refusing keys not in
// known and keys given twice. A null node is an empty mapping.
func (n node) mapping(known ...string) (map[string]node, []string, error) {
	n = n.deref()
	if n.isNull() {
		return map[string]node{}, nil, nil
	}
	if n.n.Kind != yaml.MappingNode {
		return nil, nil, n.errorf("want a mapping of keys to values, got %s", describe(n.n))
	}
	m := make(map[string]node, len(n.n.Content)/2)
	var order []string
	for i := 0; i+1 < len(n.n.Content); i += 2 {
		k := node{n: n.n.Content[i], path: n.path}.deref()
		if k.n.Kind != yaml.ScalarNode {
			return nil, nil, n.errorf("keys must be plain strings, got %s", describe(k.n))
		}
		key := k.n.Value
		if known != nil && !contains(known, key) {
			msg := fmt.Sprintf("unknown key %q", key)
			if s := suggest(key, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			return nil, nil, n.errorf("%s", msg)
		}
		if _, dup := m[key]; dup {
			return nil, nil, n.errorf("key %q is given twice", key)
		}
		m[key] = node{n: n.n.Content[i+1], path: n.child(key).path}
		order = append(order, key)
	}
	return m, order, nil
}

// sequence returns the elements of a sequence, each with its index in its
// path. A null node is an empty sequence.
func (n node) sequence() ([]node, error) {
	n = n.deref()
	if n.isNull() {
		return nil, nil
	}
	if n.n.Kind != yaml.SequenceNode {
		return nil, n.errorf("want a list, got %s", describe(n.n))
	}
	out := make([]node, len(n.n.Content))
	for i, c := range n.n.Content {
		out[i] = node{n: c, path: fmt.Sprintf("%s[%d]", n.path, i)}
	}
	return out, nil
}

// scalar returns the text of a scalar.
func (n node) scalar() (string, error) {
	n = n.deref()
	if n.n == nil || n.n.Kind != yaml.ScalarNode || n.isNull() {
		return "", n.errorf("want a value, got %s", describe(n.n))
	}
	return n.n.Value, nil
}

// integer returns the value of an integer scalar in [lo, hi].
func (n node) integer(lo, hi int) (int, error) {
	s, err := n.scalar()
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, n.errorf("%q is not an integer in [%d, %d]", s, lo, hi)
	}
	return v, nil
}

func describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns the known key closest to key when it is close enough to
// be a typo.
func suggest(key string, known []string) string {
	best, bestD := "", 0
	for _, k := range known {
		d := editDistance(key, k)
		if d <= max(1, len(k)/3) && (best == "" || d < bestD) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
