//go:build !linux

package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// limitMemory outside Linux (a workstation running stagesetctl): the soft
// limit and a watchdog on the memory the Go runtime has mapped; no kernel cap.
func limitMemory(budget int64) error {
	debug.SetMemoryLimit(budget / 10 * 8)
	go func() {
		samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
		for {
			metrics.Read(samples)
			if int64(samples[0].Value.Uint64()-samples[1].Value.Uint64()) > budget {
				fmt.Fprintf(os.Stderr, "Error: the build exceeded its memory limit of %d MiB (a YAML alias bomb, or an input too large to build)\n", budget>>20)
				os.Exit(exitMemory)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return nil
}
