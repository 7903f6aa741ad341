package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"
)

// limitMemory bounds the build to budget bytes three ways:
//   - debug.SetMemoryLimit at 80% of it, so the collector works harder
//     before the budget is reached rather than letting garbage pile up;
//   - a watchdog that ends the process with a one-line error as soon as its
//     resident size exceeds the budget (a YAML alias bomb gets there in
//     well under a second);
//   - RLIMIT_AS, the address space mapped at start plus the budget plus
//     headroom, as the hard cap the kernel enforces when an allocation
//     outruns the watchdog (the runtime then dies with "out of memory",
//     which the controller reports the same way).
func limitMemory(budget int64) error {
	debug.SetMemoryLimit(budget / 10 * 8)
	mapped, err := statusBytes("VmSize:")
	if err != nil {
		return fmt.Errorf("reading the process's address space: %w", err)
	}
	hard := uint64(mapped) + uint64(budget) + 256<<20
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: hard, Max: hard}); err != nil {
		return fmt.Errorf("setting RLIMIT_AS: %w", err)
	}
	go watchdog(budget)
	return nil
}

func watchdog(budget int64) {
	pageSize := int64(os.Getpagesize())
	buf := make([]byte, 128)
	for {
		if rss := residentPages(buf) * pageSize; rss > budget {
			fmt.Fprintf(os.Stderr, "Error: the build exceeded its memory limit of %d MiB (a YAML alias bomb, or an input too large to build)\n", budget>>20)
			os.Exit(exitMemory)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// residentPages reads the second field of /proc/self/statm.
func residentPages(buf []byte) int64 {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return 0
	}
	n, _ := f.Read(buf)
	_ = f.Close()
	fields := bytes.Fields(buf[:n])
	if len(fields) < 2 {
		return 0
	}
	v, _ := strconv.ParseInt(string(fields[1]), 10, 64)
	return v
}

// statusBytes reads a "kB" line of /proc/self/status.
func statusBytes(key string) (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(key)); ok {
			fields := bytes.Fields(rest)
			if len(fields) == 0 {
				break
			}
			kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s line in /proc/self/status", key)
}
