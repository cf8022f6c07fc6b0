package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// binDir holds the programs the tests build, once per run of the
// package; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ustack-interop-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var build struct {
	once            sync.Once
	ustack, ustackd string
	err             error
}

// buildCommands builds cmd/ustack and cmd/ustackd (once per run of the
// package) and returns their paths.
func buildCommands(t *testing.T) (ustack, ustackd string) {
	t.Helper()
	build.once.Do(func() {
		ustack, ustackd := filepath.Join(binDir, "ustack"), filepath.Join(binDir, "ustackd")
		for _, b := range []struct{ bin, pkg string }{{ustack, "ustack/cmd/ustack"}, {ustackd, "ustack/cmd/ustackd"}} {
			if out, err := exec.Command("go", "build", "-o", b.bin, b.pkg).CombinedOutput(); err != nil {
				build.err = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
		build.ustack, build.ustackd = ustack, ustackd
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.ustack, build.ustackd
}
