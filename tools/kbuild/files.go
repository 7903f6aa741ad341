package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// stdinOverlay is what --stdin-json reads: the stage's kustomization (as
// --kustomization takes it) and file contents that replace files of the
// artifact in memory — the controller's decrypted SOPS files, which so never
// touch disk. A replaced file must exist in the artifact (inside the root,
// symbolic links resolved): an overlay changes contents, never the tree.
type stdinOverlay struct {
	Kustomization *struct {
		Name string `json:"name"`
		Data []byte `json:"data"` // base64 in the JSON
	} `json:"kustomization"`
	Files map[string][]byte `json:"files"` // root-relative path -> contents (base64 in the JSON)
}

// loadFileOverlays resolves each overlay path inside the root and keys the
// contents by the resolved path, where ReadFile and Open look them up.
func (f *confinedFS) loadFileOverlays(files map[string][]byte) error {
	f.files = make(map[string][]byte, len(files))
	for rel, data := range files {
		if filepath.IsAbs(rel) {
			return fmt.Errorf("overlay %q: want a path relative to the artifact", rel)
		}
		real, exists, _, err := f.resolve("replace", filepath.Join(f.root, rel))
		if err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("overlay %q: no such file in the artifact", rel)
		}
		f.files[real] = data
	}
	return nil
}

func decodeStdinOverlay(data []byte) (*stdinOverlay, error) {
	var o stdinOverlay
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return nil, fmt.Errorf("reading the overlay from stdin: %w", err)
	}
	return &o, nil
}

// memFile is an overlaid file opened for reading.
type memFile struct {
	*bytes.Reader
	name string
	size int64
}

var _ filesys.File = (*memFile)(nil)

func (m *memFile) Write([]byte) (int, error)  { return 0, errReadOnly }
func (m *memFile) Close() error               { return nil }
func (m *memFile) Stat() (os.FileInfo, error) { return memInfo{name: m.name, size: m.size}, nil }

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string        { return i.name }
func (i memInfo) Size() int64         { return i.size }
func (i memInfo) Mode() iofs.FileMode { return 0o444 }
func (i memInfo) ModTime() time.Time  { return time.Time{} }
func (i memInfo) IsDir() bool         { return false }
func (i memInfo) Sys() any            { return nil }
