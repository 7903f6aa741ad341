package main

import (
	"bytes"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// confinedFS is the filesystem kustomize builds with: every path it is handed
// is resolved the way the kernel would open it (absolute, symbolic links
// followed by filepath.EvalSymlinks on the whole path) and refused unless the
// result lies inside root. The operation then runs on the resolved path, so
// what was checked is what is read. It is read-only: a build never writes.
//
// One file may be overlaid: the kustomization of the stage directory, which
// the controller generates or extends with the stage's patches and passes on
// stdin, so the (shared, read-only) artifact is never modified. The other
// kustomization file names in that directory are hidden, as kustomize would
// otherwise refuse a directory with several.
type confinedFS struct {
	root    string // absolute, symbolic links resolved
	overlay *overlay
	// files replaces the contents of artifact files, keyed by resolved path (see files.go).
	files  map[string][]byte
	checks *violations
	// aliasNodes is how many nodes YAML aliases have added so far.
	aliasNodes int64
}

type overlay struct {
	dir  string // absolute, symbolic links resolved
	name string
	data []byte
}

var _ filesys.FileSystem = (*confinedFS)(nil)

// outsideError is a read refused because its path resolves outside the root.
type outsideError struct {
	op   string
	path string // as shown: root-relative when lexically inside the root
}

func (e *outsideError) Error() string {
	return fmt.Sprintf("refused to %s %q: it resolves outside the artifact (a build may only read files inside it)", e.op, e.path)
}

var errReadOnly = errors.New("the build filesystem is read-only")

func newConfinedFS(root string, checks *violations) (*confinedFS, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("artifact root %q: %w", root, err)
	}
	info, err := os.Stat(real)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("artifact root %q is not a directory", root)
	}
	return &confinedFS{root: real, checks: checks}, nil
}

func (f *confinedFS) inside(real string) bool {
	return real == f.root || strings.HasPrefix(real, f.root+string(filepath.Separator))
}

// shown is how a path appears in messages: relative to the root when it is
// lexically inside it, else as given.
func (f *confinedFS) shown(abs string) string {
	if f.inside(abs) {
		if rel, err := filepath.Rel(f.root, abs); err == nil {
			return rel
		}
	}
	return abs
}

func (f *confinedFS) refuse(op, abs string) error {
	err := &outsideError{op: op, path: f.shown(abs)}
	f.checks.record(err)
	return err
}

// resolve returns the resolved absolute path of p, whether it exists, and an
// outsideError when it (or, for a path that does not exist, its deepest
// existing ancestor) resolves outside the root. notFound is the error to
// report when it does not exist.
func (f *confinedFS) resolve(op, p string) (real string, exists bool, notFound error, err error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", false, nil, err
	}
	real, evalErr := filepath.EvalSymlinks(abs)
	if evalErr == nil {
		if !f.inside(real) {
			return "", false, nil, f.refuse(op, abs)
		}
		return real, true, nil, nil
	}
	// Missing (or unreadable, or a link loop): judge the deepest ancestor that
	// resolves, so a missing file is "not found" only when its directory is
	// inside the root. Nothing is read from such a path.
	dir, rest := abs, []string{}
	for {
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false, nil, f.refuse(op, abs)
		}
		rest = append([]string{filepath.Base(dir)}, rest...)
		dir = parent
		if r, e := filepath.EvalSymlinks(dir); e == nil {
			if !f.inside(r) {
				return "", false, nil, f.refuse(op, abs)
			}
			return filepath.Join(append([]string{r}, rest...)...), false, evalErr, nil
		}
	}
}

// overlaid tells whether p names the overlaid kustomization, or another
// kustomization file name in its directory (hidden).
func (f *confinedFS) overlaid(p string) (isOverlay, hidden bool) {
	if f.overlay == nil {
		return false, false
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return false, false
	}
	base := filepath.Base(abs)
	if !isKustomizationName(base) {
		return false, false
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil || dir != f.overlay.dir {
		return false, false
	}
	return base == f.overlay.name, base != f.overlay.name
}

func isKustomizationName(name string) bool {
	for _, n := range konfig.RecognizedKustomizationFileNames() {
		if n == name {
			return true
		}
	}
	return false
}

func notExist(op, p string) error {
	return &iofs.PathError{Op: op, Path: p, Err: syscall.ENOENT}
}

func (f *confinedFS) ReadFile(p string) ([]byte, error) {
	if ov, hidden := f.overlaid(p); ov {
		if err := f.checkContent(f.overlay.data, f.shown(filepath.Join(f.overlay.dir, f.overlay.name)), true); err != nil {
			return nil, err
		}
		return f.overlay.data, nil
	} else if hidden {
		return nil, notExist("open", p)
	}
	real, exists, notFound, err := f.resolve("read", p)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, &iofs.PathError{Op: "open", Path: p, Err: unwrapPathError(notFound)}
	}
	data, replaced := f.files[real]
	if !replaced {
		data, err = os.ReadFile(real)
		if err != nil {
			return nil, err
		}
	}
	abs, _ := filepath.Abs(p)
	if err := f.checkContent(data, f.shown(abs), isKustomizationName(filepath.Base(p))); err != nil {
		return nil, err
	}
	return data, nil
}

// checkContent runs the checks on what a build reads: alias expansion for
// every file, remote targets for kustomizations.
func (f *confinedFS) checkContent(data []byte, shown string, kustomization bool) error {
	added, err := checkAliases(data, shown, maxAliasNodes-f.aliasNodes)
	f.aliasNodes += added
	if err != nil {
		f.checks.record(err)
		return err
	}
	if kustomization {
		return f.checkKustomization(data, shown)
	}
	return nil
}

func unwrapPathError(err error) error {
	var pe *iofs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	if err == nil {
		return syscall.ENOENT
	}
	return err
}

func (f *confinedFS) Exists(p string) bool {
	if ov, hidden := f.overlaid(p); ov || hidden {
		return ov
	}
	real, exists, _, err := f.resolve("read", p)
	if err != nil || !exists {
		return false
	}
	_, err = os.Stat(real)
	return err == nil
}

func (f *confinedFS) IsDir(p string) bool {
	if ov, hidden := f.overlaid(p); ov || hidden {
		return false
	}
	real, exists, _, err := f.resolve("read", p)
	if err != nil || !exists {
		return false
	}
	info, err := os.Stat(real)
	return err == nil && info.IsDir()
}

func (f *confinedFS) ReadDir(p string) ([]string, error) {
	real, exists, notFound, err := f.resolve("list", p)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, notFound
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries)+1)
	isOverlayDir := f.overlay != nil && real == f.overlay.dir
	for _, e := range entries {
		if isOverlayDir && isKustomizationName(e.Name()) {
			continue
		}
		names = append(names, e.Name())
	}
	if isOverlayDir {
		names = append(names, f.overlay.name)
	}
	return names, nil
}

// CleanedAbs splits p into a resolved directory and a file name (empty when
// p is a directory), as the on-disk filesystem does, inside the root only.
func (f *confinedFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	if ov, hidden := f.overlaid(p); ov {
		return filesys.ConfirmedDir(f.overlay.dir), f.overlay.name, nil
	} else if hidden {
		return "", "", fmt.Errorf("evalsymlink failure on '%s' : %w", p, notExist("lstat", p))
	}
	real, exists, notFound, err := f.resolve("read", p)
	if err != nil {
		return "", "", err
	}
	if !exists {
		return "", "", fmt.Errorf("evalsymlink failure on '%s' : %w", p, notFound)
	}
	info, err := os.Stat(real)
	if err != nil {
		return "", "", err
	}
	if info.IsDir() {
		return filesys.ConfirmedDir(real), "", nil
	}
	return filesys.ConfirmedDir(filepath.Dir(real)), filepath.Base(real), nil
}

func (f *confinedFS) Open(p string) (filesys.File, error) {
	if ov, hidden := f.overlaid(p); ov || hidden {
		return nil, fmt.Errorf("open %s: the stage kustomization can only be read whole", p)
	}
	real, exists, notFound, err := f.resolve("read", p)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, notFound
	}
	if data, replaced := f.files[real]; replaced {
		return &memFile{Reader: bytes.NewReader(data), name: filepath.Base(real), size: int64(len(data))}, nil
	}
	return os.Open(real)
}

// Glob keeps only matches that resolve inside the root, hidden files dropped
// unless the pattern names them, as the on-disk filesystem does.
func (f *confinedFS) Glob(pattern string) ([]string, error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	var kept []string
	for _, m := range matches {
		if _, exists, _, err := f.resolve("read", m); err == nil && exists {
			kept = append(kept, m)
		}
	}
	if !filesys.IsHiddenFilePath(pattern) {
		kept = filesys.RemoveHiddenFiles(kept)
	}
	return kept, nil
}

// Walk walks the resolved directory; filepath.Walk does not follow links, so
// every path it visits is inside the root.
func (f *confinedFS) Walk(p string, walkFn filepath.WalkFunc) error {
	real, exists, notFound, err := f.resolve("list", p)
	if err != nil {
		return err
	}
	if !exists {
		return notFound
	}
	return filepath.Walk(real, walkFn)
}

func (f *confinedFS) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (f *confinedFS) Mkdir(string) error                  { return errReadOnly }
func (f *confinedFS) MkdirAll(string) error               { return errReadOnly }
func (f *confinedFS) RemoveAll(string) error              { return errReadOnly }
func (f *confinedFS) WriteFile(string, []byte) error      { return errReadOnly }
