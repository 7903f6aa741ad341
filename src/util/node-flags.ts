/**
 * The V8 flags the controller runs with: the image's entrypoint
 * (Dockerfile), the `stageset-controller` bin's shebang (src/main.ts), the
 * benchmark (bench/lib/our-controller.ts) and the binary tests all start it
 * with them; test/unit/util/node-flags.test.ts keeps those in step.
 *
 * `--max-semi-space-size=8` (MiB): V8's young generation is two semi-spaces
 * of up to 16 MiB each on 64-bit, all of it resident once a controller has
 * been busy for a while. Measured with bench/kustomize-controller.ts B3 on
 * the two-core machine: 8 MiB took peak RSS at 100 StageSets from
 * 170–183 MiB to 166–169 MiB and at 500 from 208–223 MiB to 187 MiB, with
 * no loss of time (24.7 s and 138 s against 26–28 s and 142–160 s); 4 MiB
 * saved more memory but cost 12% of B3's time at 500. It is a start-up flag
 * (V8 sizes the young generation when the isolate is created), so unlike
 * `--heap-growth-percent` it cannot be set from inside the process.
 * NODE_OPTIONS, read after these, can override it.
 */
export const CONTROLLER_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=8"];
