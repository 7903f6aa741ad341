package main

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/api/provider"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
)

// violations keeps the first refusal (a path outside the root, a remote
// target): kustomize wraps errors from the filesystem in its own context, or
// tries another way after one, so the refusal itself is what the build
// reports when it fails.
type violations struct {
	mu    sync.Mutex
	first error
}

func (v *violations) record(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.first == nil {
		v.first = err
	}
}

func (v *violations) get() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.first
}

// remoteError is a remote resource, base, component, generator, transformer
// or validator a kustomization names.
type remoteError struct {
	file, field, entry string
}

func (e *remoteError) Error() string {
	return fmt.Sprintf("remote resources are not allowed: %s: %s entry %q (a build may not use the network)", e.file, e.field, e.entry)
}

var scpUser = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*@`)

// isRemote tells whether kustomize could treat entry as something to fetch:
// a URL (kustomize fetches http(s) files and clones http(s), ssh and file
// repositories), a go-getter `git::` form, an scp-like `user@host:path`, or a
// `github.com/org/repo` shorthand. This is a superset of what kustomize's own
// parser (api/internal/git.NewRepoSpecFromURL, loader.IsRemoteFile) accepts,
// so a local path spelled like one (say a directory named github.com) is
// refused too.
func isRemote(entry string) bool {
	s := strings.TrimSpace(entry)
	if strings.Contains(s, "://") {
		return true
	}
	if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		return true
	}
	lower := strings.ToLower(s)
	if strings.HasPrefix(lower, "git::") {
		return true
	}
	if scpUser.MatchString(s) {
		return true
	}
	return strings.HasPrefix(lower, "github.com/") || strings.HasPrefix(lower, "github.com:")
}

var resMapFactory = resmap.NewFactory(provider.NewDefaultDepProvider().GetResourceFactory())

// isInline mirrors kustomize's test for an inline generator/transformer/
// validator configuration: the entry parses as resources.
func isInline(entry string) bool {
	_, err := resMapFactory.NewResMapFromBytes([]byte(entry))
	return err == nil
}

// checkKustomization refuses a kustomization that names a remote target in
// a field kustomize may clone or download from: it is parsed by kustomize's
// own code (types.Kustomization.Unmarshal), from the very bytes kustomize is
// about to get, so the check sees what the build sees. Every kustomization
// a build reads passes through here (ReadFile), so the git cloner and the
// HTTP client are never reached from a kustomization's entries; the
// transport and PATH set up in main are the backstop for anything else.
// A kustomization that does not parse is left to kustomize to report.
func (f *confinedFS) checkKustomization(data []byte, shown string) error {
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return nil
	}
	fields := []struct {
		name    string
		entries []string
		inline  bool
	}{
		{"resources", k.Resources, false},
		{"bases", k.Bases, false},
		{"components", k.Components, false},
		{"generators", k.Generators, true},
		{"transformers", k.Transformers, true},
		{"validators", k.Validators, true},
	}
	for _, field := range fields {
		for _, entry := range field.entries {
			if !isRemote(entry) || (field.inline && isInline(entry)) {
				continue
			}
			err := &remoteError{file: shown, field: field.name, entry: redact(entry)}
			f.checks.record(err)
			return err
		}
	}
	return nil
}

// redact drops a password from a URL-like entry.
func redact(entry string) string {
	if u, err := url.Parse(entry); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			return u.Redacted()
		}
	}
	return entry
}

// noNetwork is the process's HTTP transport: kustomize downloads remote
// files with a default http.Client, which uses http.DefaultTransport.
type noNetwork struct{ checks *violations }

func (n noNetwork) RoundTrip(r *http.Request) (*http.Response, error) {
	err := fmt.Errorf("remote resources are not allowed: %q (a build may not use the network)", r.URL.Redacted())
	n.checks.record(err)
	return nil, err
}
