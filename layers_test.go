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
	{"ustack/internal/ratelimit", 0},
	{"ustack/internal/netns", 0},  // test support: namespaces and veths
	{"ustack/link", 10},           // the contract
	{"ustack/link/offload", 20},   // virtio-net headers, checksums, GSO
	{"ustack/link/internal/", 30}, // code shared by the fd-based drivers
	{"ustack/link/", 40},          // drivers and decorators
	{"ustack/proto", 50},
	{"ustack/network/neigh", 60},
	{"ustack/network/route", 60},
	{"ustack/network/internal/", 65}, // code shared by IPv4 and IPv6
	{"ustack/network/", 70},
	{"ustack/transport/internal/", 75},
	{"ustack/transport/tcp/cc", 78}, // congestion control, below the TCP core // code shared by the transports
	{"ustack/transport/", 80},
	{"ustack/stack", 90},
	{"ustack/socket", 100},
	{"ustack/service", 110},
	{"ustack/ctl/", 110},
	{"ustack/daemon", 120},
	{"ustack/cmd/", 130},
	{"ustack/interop", 140}, // tests with the Linux kernel as the peer
	{"ustack", 140},         // the module root: tests only
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
		"ustack/wire": 0, "ustack/link": 10, "ustack/link/pipe": 40, "ustack/link/offload": 20,
		"ustack/link/internal/fdlink": 30, "ustack/network/ipv4": 70, "ustack/network/route": 60,
		"ustack/transport/internal/rxq": 75, "ustack/transport/udp": 80, "ustack/stack": 90, "ustack/cmd/ustack": 130,
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
