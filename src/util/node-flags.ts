/**
 * The V8 flags the controller runs with: the image's entrypoint
 * (Dockerfile), the `stageset-controller` bin's shebang (src/main.ts), the
 * benchmark (bench/lib/our-controller.ts) and the binary tests all start it
 * with them; test/unit/util/node-flags.test.ts keeps those in step.
 *
 * `--max-semi-space-size=8` (MiB): V8's young generation is two semi-spaces
 * of up to 16 MiB each on 64-bit, all of it resident once a controller has
 * been busy for a while. Measured with bench/kustomize-controller.ts on the
 * two-core machine (make bench, 3 rounds each): 8 MiB took B3's peak RSS at
 * 100 StageSets from 181 (170–183) to 155 (144–163) MiB and at 500 from 219
 * to 203 MiB with B3 no slower, but B1 (one stage of 1000 objects) from
 * 2.17 s to 2.49 s: more scavenges while the objects are parsed and applied.
 * 4 MiB saved more memory but cost 12% of B3's time at 500. It is a start-up flag
 * (V8 sizes the young generation when the isolate is created), so unlike
 * `--heap-growth-percent` it cannot be set from inside the process.
 * NODE_OPTIONS, read after these, can override it.
 */
export const CONTROLLER_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=8"];
