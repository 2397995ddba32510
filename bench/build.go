package bench

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// mainModule is the module path of the repository root.
const mainModule = "github.com/wsloop/wsloop"

// FindRoot walks up from dir to the directory whose go.mod declares the
// wsloop module.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if f, err := os.Open(filepath.Join(d, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if strings.TrimSpace(sc.Text()) == "module "+mainModule {
					f.Close()
					return d, nil
				}
			}
			f.Close()
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod of %s in %s or above: run wsbench inside the wsloop repository", mainModule, dir)
		}
	}
}

// buildAll compiles wsload and the binaries of servers into binDir, once.
func buildAll(ctx context.Context, root, binDir string, servers []ServerSpec, log *slog.Logger) error {
	type target struct{ dir, pkg, out string }
	targets := []target{{root, "./cmd/wsload", "wsload"}}
	seen := map[string]bool{}
	for _, s := range servers {
		if seen[s.Binary] {
			continue
		}
		seen[s.Binary] = true
		if s.Rev != "" {
			continue // below
		}
		if s.Baseline {
			targets = append(targets, target{filepath.Join(root, "bench", "baseline"), "./" + s.Binary, s.Binary})
		} else {
			targets = append(targets, target{root, "./cmd/" + s.Binary, s.Binary})
		}
	}
	for _, s := range servers {
		if s.Rev == "" {
			continue
		}
		// A previous version: its tree, checked out beside the build.
		tree := filepath.Join(binDir, "src-"+s.Binary)
		out, err := exec.CommandContext(ctx, "git", "-C", root, "worktree", "add", "--detach", tree, s.Rev).CombinedOutput()
		if err != nil {
			return fmt.Errorf("git worktree add %s: %v\n%s", s.Rev, err, out)
		}
		defer exec.Command("git", "-C", root, "worktree", "remove", "--force", tree).Run()
		targets = append(targets, target{tree, "./cmd/wsloop", s.Binary})
	}
	for _, t := range targets {
		log.Info("building", "pkg", t.pkg, "dir", t.dir)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(binDir, t.out), t.pkg)
		cmd.Dir = t.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s (in %s): %v\n%s", t.pkg, t.dir, err, out)
		}
	}
	return nil
}
