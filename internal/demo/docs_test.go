package demo_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/causewayhq/causeway/internal/platform/platformtest"
	"github.com/causewayhq/causeway/internal/testkit"
)

// docsDir holds the pages for developers and bank operators.
const docsDir = "../../docs"

// docPages are the pages the docs must have: one per building block and
// one per story.
var docPages = []string{"apis.md", "events.md", "spis.md", "data-partnering.md", "baas.md", "empathetic-banking.md"}

// readme is the repository's front page, whose walkthrough addresses a
// node on localhost:8080 with its admin token in causeway-data/.
const readme = "../../README.md"

// snippet is a fenced block of a page whose info string is "sh tested".
type snippet struct {
	line int // where the block starts, 1-based
	code string
}

// testedSnippets returns the page's ```sh tested blocks, in order.
func testedSnippets(page []byte) ([]snippet, error) {
	var out []snippet
	var cur *snippet
	var body strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(page))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			info := strings.Fields(strings.TrimPrefix(trimmed, "```"))
			if len(info) >= 2 && info[0] == "sh" && slices.Contains(info[1:], "tested") {
				cur = &snippet{line: n}
				body.Reset()
			} else if len(info) > 0 || trimmed == "```" {
				// Another fenced block: skip to its end.
				cur = &snippet{line: -n}
				body.Reset()
			}
		case cur != nil && trimmed == "```":
			if cur.line > 0 {
				cur.code = body.String()
				out = append(out, *cur)
			}
			cur = nil
		case cur != nil:
			body.WriteString(line + "\n")
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("a fenced block from line %d is never closed", abs(cur.line))
	}
	return out, sc.Err()
}

func abs(n int) int { return max(n, -n) }

// TestDocsExamplesRun is what keeps the docs from rotting: every ```sh
// tested block of docs/*.md and of the README runs with bash, in page
// order, against a live node, and must exit 0. The blocks of one page
// share one shell, so an earlier block's variables (ids, tokens) serve the
// later ones. They get $CAUSEWAY (the node's URL), $ADMIN_TOKEN, and two
// endpoints of the reader's own, here served by the test: $HOOK_URL (a
// webhook receiver that answers 204) and $SPI_URL (an SPI endpoint:
// /fraud-check answers approve, /lookup answers insights). The README is
// written for `causeway serve` as it starts by default: its localhost:8080
// becomes the node's address, and its working directory has the node's
// admin token in causeway-data/admin-token.
func TestDocsExamplesRun(t *testing.T) {
	var missing []string
	for _, tool := range []string{"bash", "curl", "jq", "age", "age-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		// CI installs them and sets CAUSEWAY_REQUIRE_AGE: there a skip
		// would let the docs rot unseen, so it is a failure.
		testkit.Unavailable(t, "CAUSEWAY_REQUIRE_AGE", "the docs' examples need "+strings.Join(missing, ", "))
	}
	paths := map[string]string{"README": readme}
	names := []string{"README"}
	for _, name := range docPages {
		paths[name] = filepath.Join(docsDir, name)
		names = append(names, name)
	}
	pages := map[string][]snippet{}
	for _, name := range names {
		raw, err := os.ReadFile(paths[name])
		if err != nil {
			t.Fatalf("%s: %v", paths[name], err)
		}
		snips, err := testedSnippets(raw)
		if err != nil {
			t.Fatalf("%s: %v", paths[name], err)
		}
		if len(snips) == 0 {
			t.Fatalf("%s has no ```sh tested example", name)
		}
		pages[name] = snips
	}

	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	// Cleanup, not defer: the runtimes' subtests run in parallel, after
	// this function has returned.
	t.Cleanup(hook.Close)
	spi := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/fraud-check"):
			json.NewEncoder(w).Encode(map[string]any{"decision": "approve", "score": 7, "reason": "known payee"})
		case strings.HasSuffix(r.URL.Path, "/lookup"):
			json.NewEncoder(w).Encode(map[string]any{"insights": []map[string]any{{"kind": "life_event", "title": "Recently moved house", "confidence": 0.8}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(spi.Close)

	platformtest.Each(t, func(t *testing.T, rt platformtest.Runtime) {
		n := platformtest.Start(t, rt.Config(t))
		for _, name := range names {
			t.Run(strings.TrimSuffix(name, ".md"), func(t *testing.T) {
				runSnippets(t, strings.TrimPrefix(paths[name], "../../"), pages[name], strings.TrimPrefix(n.URL, "http://"), []string{
					"CAUSEWAY=" + n.URL, "ADMIN_TOKEN=" + platformtest.AdminToken,
					"HOOK_URL=" + hook.URL + "/hooks/causeway", "SPI_URL=" + spi.URL,
				})
			})
		}
	})
}

// runSnippets runs one page's blocks in one bash, with -euo pipefail, in a
// scratch directory holding causeway-data/admin-token, with localhost:8080
// replaced by hostPort, and reports the block that failed.
func runSnippets(t *testing.T, page string, snips []snippet, hostPort string, env []string) {
	work := t.TempDir()
	if err := os.Mkdir(filepath.Join(work, "causeway-data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "causeway-data", "admin-token"), []byte(platformtest.AdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, s := range snips {
		fmt.Fprintf(&script, "echo %d > %q\n", s.line, filepath.Join(work, ".block"))
		script.WriteString(strings.ReplaceAll(s.code, "localhost:8080", hostPort))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-c", script.String())
	cmd.Dir = work
	cmd.WaitDelay = 5 * time.Second
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAUSEWAY") && !strings.HasPrefix(kv, "ADMIN_TOKEN=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		line, _ := os.ReadFile(filepath.Join(work, ".block"))
		t.Fatalf("%s: the example at line %s failed (%v):\n%s", page, strings.TrimSpace(string(line)), err, out.String())
	}
	if testing.Verbose() {
		t.Logf("%s:\n%s", page, out.String())
	}
}

// TestTestedSnippetsAreFoundAndOthersSkipped checks the extractor on a
// page with a tested block, an untested sh block and a block of another
// language.
func TestTestedSnippetsAreFoundAndOthersSkipped(t *testing.T) {
	page := "# x\n```sh\nnot run\n```\n```sh tested\necho one\n```\n```json\n{}\n```\ntext\n```sh tested\necho two\n```\n"
	got, err := testedSnippets([]byte(page))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].code != "echo one\n" || got[0].line != 5 || got[1].code != "echo two\n" {
		t.Errorf("snippets = %+v", got)
	}
	if _, err := testedSnippets([]byte("```sh tested\necho\n")); err == nil {
		t.Error("an unclosed block was accepted")
	}
}

// TestReadmeLayoutNamesEveryPackage keeps the README's layout true: each
// directory holding a Go package has its line (the root package is named
// by its errors.go), and each line names a directory that exists.
func TestReadmeLayoutNamesEveryPackage(t *testing.T) {
	const root = "../.."
	raw, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no ## Layout section")
	}
	_, block, _ := strings.Cut(section, "\n```\n")
	block, _, _ = strings.Cut(block, "\n```")
	named := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			named[f[0]] = true
		}
	}
	if !named["errors.go"] {
		t.Error("the layout does not name the root package (errors.go)")
	}
	packages := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		if dir, _ := filepath.Rel(root, filepath.Dir(path)); dir != "." {
			packages[filepath.ToSlash(dir)+"/"] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range packages {
		if !named[p] {
			t.Errorf("the README's layout has no line for %s", p)
		}
	}
	for name := range named {
		if strings.HasSuffix(name, "/") && !packages[name] {
			t.Errorf("the README's layout names %s, which holds no Go package", name)
		}
	}
}
