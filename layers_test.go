package ustack_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// layers gives every package of the module its rank in shared/DESIGN.md's
// layering: a package may import only packages of a strictly lower rank.
// Packages beside each other (ARP and IPv4, UDP and ICMP) share a rank and
// so cannot import each other: they talk through proto's interfaces. The
// longest matching prefix decides; every package must match one.
var layers = []struct {
	prefix string
	rank   int
}{
	{"ustack/wire", 0},
	{"ustack/buf", 0},
	{"ustack/internal/clock", 0},
	{"ustack/internal/stats", 0},
	{"ustack/internal/seqnum", 0},
	{"ustack/internal/netns", 0}, // test support: namespaces and veths
	{"ustack/link", 1},           // the contract
	{"ustack/link/offload", 2},
	{"ustack/link/", 3}, // drivers and decorators
	{"ustack/proto", 4},
	{"ustack/network/neigh", 5},
	{"ustack/network/route", 5},
	{"ustack/network/", 6},
	{"ustack/transport/", 7},
	{"ustack/stack", 8},
	{"ustack/socket", 9},
	{"ustack/service", 10},
	{"ustack/ctl/", 10},
	{"ustack/daemon", 11},
	{"ustack/cmd/", 12},
	{"ustack", 13}, // the module root: tests only
}

func rankOf(pkg string) (int, bool) {
	best, rank := -1, 0
	for _, l := range layers {
		match := pkg == l.prefix || (strings.HasSuffix(l.prefix, "/") && strings.HasPrefix(pkg, l.prefix)) ||
			(l.prefix != "ustack" && strings.HasPrefix(pkg, l.prefix+"/"))
		if match && len(l.prefix) > best {
			best, rank = len(l.prefix), l.rank
		}
	}
	return rank, best >= 0
}

func TestLayering(t *testing.T) {
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		r, ok := rankOf(p.ImportPath)
		if !ok {
			t.Errorf("package %s has no layer: add it to layers in layers_test.go", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if imp != "ustack" && !strings.HasPrefix(imp, "ustack/") {
				continue
			}
			ir, _ := rankOf(imp)
			if ir >= r {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must go down the layers", p.ImportPath, r, imp, ir)
			}
		}
	}
	if n < 5 {
		t.Fatalf("go list found only %d packages", n)
	}
}

// TestRankOf checks the matcher itself, so the layering test can fail.
func TestRankOf(t *testing.T) {
	for pkg, want := range map[string]int{
		"ustack/wire": 0, "ustack/link": 1, "ustack/link/pipe": 3, "ustack/link/offload": 2,
		"ustack/network/ipv4": 6, "ustack/network/route": 5, "ustack/stack": 8, "ustack/cmd/ustack": 12,
	} {
		if got, ok := rankOf(pkg); !ok || got != want {
			t.Errorf("rankOf(%s) = %d, %v; want %d", pkg, got, ok, want)
		}
	}
	if _, ok := rankOf("ustack/nowhere"); ok {
		// "ustack" matches the root only, not arbitrary packages.
		t.Errorf("rankOf(ustack/nowhere) matched a layer")
	}
}
