// kbuild runs `kustomize build` through the kustomize API with every read
// confined to one directory tree, no network, builtin plugins only, and a
// memory budget. The controller runs it on an unpacked artifact.
//
//	kbuild [--kustomization NAME] [--max-memory BYTES] [--output yaml|json] ROOT DIR
//
// ROOT is the artifact; DIR (inside ROOT, absolute or relative to ROOT) is
// the directory to build. With --kustomization, stdin holds the kustomization
// to use for DIR under that file name instead of the one on disk. The YAML
// (or with --output json, one JSON object per line) goes to stdout; on failure one line `Error: <message>` goes to stderr and
// the exit code is 1 (3 when the memory budget was exceeded).
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	kerrors "sigs.k8s.io/kustomize/kyaml/errors"
)

// Set with -ldflags -X by hack/tools.sh: the kustomize release the API comes
// from, and a hash of this module's source (which --version reports, so a
// stale binary is never taken for the current one).
var (
	kustomizeVersion = "v5.8.2"
	sourceHash       = "dev"
)

const (
	exitFailed    = 1
	exitUsage     = 2
	exitMemory    = 3
	maxStdinBytes = 16 << 20
	// The JSON overlay carries decrypted files too (base64: 4/3 of their size).
	maxOverlayBytes = 256 << 20
)

func main() {
	os.Exit(run())
}

func fail(code int, err error) int {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
	fmt.Fprintf(os.Stderr, "Error: %s\n", msg)
	return code
}

func run() (code int) {
	flags := flag.NewFlagSet("kbuild", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	kustomization := flags.String("kustomization", "", "read the kustomization of DIR from stdin, under this file name")
	stdinJSON := flags.Bool("stdin-json", false, "read a JSON overlay from stdin: {kustomization: {name, data}, files: {path: data}} (data base64)")
	maxMemory := flags.String("max-memory", "1073741824", "memory budget in bytes (0: none)")
	version := flags.Bool("version", false, "print the kustomize version and exit")
	output := flags.String("output", "yaml", "yaml: kustomize build's output; json: one JSON object per line")
	if err := flags.Parse(os.Args[1:]); err != nil {
		return fail(exitUsage, fmt.Errorf("%v; usage: kbuild [--kustomization NAME] [--max-memory BYTES] [--output yaml|json] ROOT DIR", err))
	}
	if *version {
		fmt.Printf("kbuild %s (kustomize %s)\n", sourceHash, kustomizeVersion)
		return 0
	}
	if flags.NArg() != 2 {
		return fail(exitUsage, errors.New("usage: kbuild [--kustomization NAME] [--max-memory BYTES] [--output yaml|json] ROOT DIR"))
	}
	if *output != "yaml" && *output != "json" {
		return fail(exitUsage, fmt.Errorf("--output %q: want yaml or json", *output))
	}
	budget, err := strconv.ParseInt(*maxMemory, 10, 64)
	if err != nil || budget < 0 {
		return fail(exitUsage, fmt.Errorf("--max-memory %q: want a number of bytes", *maxMemory))
	}
	if budget > 0 {
		if err := limitMemory(budget); err != nil {
			return fail(exitFailed, err)
		}
	}

	checks := &violations{}
	// No network: kustomize fetches remote files with a default http.Client
	// (so through http.DefaultTransport), and clones with the `git` program
	// found on PATH. Neither is available in this process.
	http.DefaultTransport = noNetwork{checks}
	http.DefaultClient = &http.Client{Transport: noNetwork{checks}}
	_ = os.Setenv("PATH", "")

	defer func() {
		// kustomize panics on some inputs; report it as one line, not a stack.
		if r := recover(); r != nil {
			code = fail(exitFailed, fmt.Errorf("kustomize failed unexpectedly: %v", r))
		}
	}()

	fSys, err := newConfinedFS(flags.Arg(0), checks)
	if err != nil {
		return fail(exitFailed, err)
	}
	dir := flags.Arg(1)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(fSys.root, dir)
	}
	if !fSys.IsDir(dir) {
		if v := checks.get(); v != nil {
			return fail(exitFailed, v)
		}
		return fail(exitFailed, fmt.Errorf("%q is not a directory inside the artifact", fSys.shown(dir)))
	}
	realDir, _ := filepath.EvalSymlinks(dir)
	if *stdinJSON {
		data, err := io.ReadAll(io.LimitReader(os.Stdin, maxOverlayBytes+1))
		if err != nil {
			return fail(exitFailed, fmt.Errorf("reading the overlay from stdin: %w", err))
		}
		if len(data) > maxOverlayBytes {
			return fail(exitFailed, fmt.Errorf("the overlay exceeds %d bytes", maxOverlayBytes))
		}
		o, err := decodeStdinOverlay(data)
		if err != nil {
			return fail(exitFailed, err)
		}
		if o.Kustomization != nil {
			if !isKustomizationName(o.Kustomization.Name) {
				return fail(exitUsage, fmt.Errorf("overlay kustomization %q: not a kustomization file name", o.Kustomization.Name))
			}
			fSys.overlay = &overlay{dir: realDir, name: o.Kustomization.Name, data: o.Kustomization.Data}
		}
		if err := fSys.loadFileOverlays(o.Files); err != nil {
			return fail(exitFailed, err)
		}
	} else if *kustomization != "" {
		if !isKustomizationName(*kustomization) {
			return fail(exitUsage, fmt.Errorf("--kustomization %q: not a kustomization file name", *kustomization))
		}
		data, err := io.ReadAll(io.LimitReader(os.Stdin, maxStdinBytes+1))
		if err != nil {
			return fail(exitFailed, fmt.Errorf("reading the kustomization from stdin: %w", err))
		}
		if len(data) > maxStdinBytes {
			return fail(exitFailed, fmt.Errorf("the kustomization exceeds %d bytes", maxStdinBytes))
		}
		fSys.overlay = &overlay{dir: realDir, name: *kustomization, data: data}
	}
	if err := os.Chdir(fSys.root); err != nil {
		return fail(exitFailed, err)
	}

	// The options of `kustomize build --load-restrictor LoadRestrictionsNone`
	// (the output is the same): builtin plugins only, no Helm, no exec or
	// container functions; reading outside the kustomization's directory is
	// allowed, and confined to the artifact by the filesystem instead.
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsNone
	opts.PluginConfig = types.DisabledPluginConfig()
	opts.Reorder = krusty.ReorderOptionUnspecified
	resources, err := krusty.MakeKustomizer(opts).Run(fSys, realDir)
	if err != nil {
		if v := checks.get(); v != nil {
			return fail(exitFailed, v)
		}
		return fail(exitFailed, err)
	}
	var rendered []byte
	if *output == "json" {
		rendered, err = asJSONLines(resources)
	} else {
		rendered, err = resources.AsYaml()
	}
	if err != nil {
		return fail(exitFailed, err)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	if _, err := out.Write(rendered); err != nil {
		return fail(exitFailed, err)
	}
	if err := out.Flush(); err != nil {
		return fail(exitFailed, err)
	}
	return 0
}

// asJSONLines renders each resource as the JSON that kustomize's AsYaml
// converts to YAML (Resource.AsYAML is MarshalJSON, then JSONToYAML), one
// object per line in kustomize's order, failing the way AsYaml fails (on the
// first resource in that order that does not render). The same values
// without the YAML round trip: JSONToYAML took 30% of a build of 1000
// ConfigMaps, and the controller parses JSON about ten times faster than YAML.
//
// MarshalJSON only reads a resource's node tree (it encodes it to YAML and
// decodes that into a map), so the resources are rendered by one goroutine
// per CPU: it was a third of the CPU of that build and ran on one core while
// the other waited (measured: kbuild of the 1000 ConfigMaps, 20 runs under
// pprof on the two-core machine).
func asJSONLines(resources resmap.ResMap) ([]byte, error) {
	list := resources.Resources()
	lines := make([][]byte, len(list))
	errs := make([]error, len(list))
	workers := min(runtime.GOMAXPROCS(0), len(list))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(list) {
					return
				}
				lines[i], errs[i] = list[i].MarshalJSON()
			}
		}()
	}
	wg.Wait()
	size := 0
	for i, line := range lines {
		if errs[i] != nil {
			m, _ := list[i].Map()
			return nil, kerrors.WrapPrefixf(errs[i], "%#v", m)
		}
		size += len(line) + 1
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	for _, line := range lines {
		buf.Write(line)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

func init() {
	// Collect when the heap has tripled rather than doubled (unless GOGC says
	// otherwise): a build is short-lived and mostly garbage, and the default
	// spent a tenth of its time in the collector. Measured on the two-core
	// machine, 20 builds of 1000 ConfigMaps each: 109 ms a build at GOGC=100
	// (30 MB peak RSS), 97 ms at 200 (38 MB), 97 ms at 400 (64 MB). The memory
	// budget's limit (limitMemory) still makes it collect near the budget.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
	// A stack deeper than this is a hostile input, not a kustomization; the
	// runtime's default (1 GB) would exceed the memory budget first.
	debug.SetMaxStack(256 << 20)
}
