package failpoints

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

func TestRegistryNamesAreUniqueAndLookupWorks(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range All() {
		if f.Pkg == "" || f.Name == "" || f.Purpose == "" {
			t.Errorf("incomplete entry %+v", f)
		}
		if seen[f.Path()] {
			t.Errorf("duplicate failpoint %s", f.Path())
		}
		seen[f.Path()] = true
		for _, key := range []string{f.Path(), f.Pkg + "/" + f.Name} {
			if got, ok := Lookup(key); !ok || got.Path() != f.Path() {
				t.Errorf("Lookup(%q) = %v, %v; want %s", key, got.Path(), ok, f.Path())
			}
		}
	}
	if _, ok := Lookup("no-such-failpoint"); ok {
		t.Error("Lookup of an unknown name succeeded")
	}
	if got := MustPath(MoveAddSent); got != Module+"/server/"+MoveAddSent {
		t.Errorf("MustPath(%q) = %q", MoveAddSent, got)
	}
	if got := MustPath("nope"); got != "" {
		t.Errorf("MustPath of an unknown name = %q, want empty", got)
	}
}

// docRow matches a failpoint row of docs/failpoints.md: | `pkg/name` | purpose | value |
var docRow = regexp.MustCompile("^\\|\\s*`([a-z/]+/[a-z0-9-]+)`\\s*\\|")

// TestDocListsTheRegistry keeps docs/failpoints.md and All naming the same failpoints.
func TestDocListsTheRegistry(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "failpoints.md"))
	if err != nil {
		t.Fatal(err)
	}
	var doc []string
	for _, line := range strings.Split(string(b), "\n") {
		if m := docRow.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			doc = append(doc, m[1])
		}
	}
	var table []string
	for _, f := range All() {
		table = append(table, f.Pkg+"/"+f.Name)
	}
	sort.Strings(doc)
	sort.Strings(table)
	if strings.Join(doc, "\n") != strings.Join(table, "\n") {
		t.Errorf("docs/failpoints.md lists\n  %s\nbut the registry has\n  %s", strings.Join(doc, "\n  "), strings.Join(table, "\n  "))
	}
}

// marker matches a failpoint marker call and captures its name.
var marker = regexp.MustCompile(`failpoint\.(?:Inject|InjectContext|InjectCall)\((?:[a-zA-Z]+, )?"([a-z0-9-]+)"`)

// TestEveryFailpointHasAMarker: a registry entry without a marker in its package would make a
// chaos scenario silently test nothing; a marker without an entry is undocumented.
func TestEveryFailpointHasAMarker(t *testing.T) {
	found := map[string]bool{}
	for _, f := range All() {
		if found[f.Pkg] {
			continue
		}
		found[f.Pkg] = true
	}
	markers := map[string]bool{}
	for pkg := range found {
		files, err := filepath.Glob(filepath.Join("..", pkg, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range marker.FindAllStringSubmatch(string(b), -1) {
				markers[pkg+"/"+m[1]] = true
			}
		}
	}
	for _, f := range All() {
		if !markers[f.Pkg+"/"+f.Name] {
			t.Errorf("failpoint %s has no failpoint.Inject marker in %s/", f.Path(), f.Pkg)
		}
		delete(markers, f.Pkg+"/"+f.Name)
	}
	for m := range markers {
		t.Errorf("marker %s is not in the registry (failpoints.All) nor in docs/failpoints.md", m)
	}
}
