import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArtifactError } from "../../../src/errors.js";
import { TarGuard, type TarEntryHeader } from "../../../src/source/tar-guard.js";

function check(entries: TarEntryHeader[], limits = { maxBytes: 1 << 20, maxEntries: 100 }): TarGuard {
  const guard = new TarGuard(limits);
  for (const entry of entries) guard.check(entry);
  guard.finish();
  return guard;
}

describe("TarGuard", () => {
  it("accepts the archive root as a directory and counts every entry and file byte", () => {
    const guard = check([
      { path: "./", type: "Directory" },
      { path: "./a/", type: "Directory" },
      { path: "./a/b.yaml", type: "File", size: 10 },
      { path: "a/c.yaml", type: "OldFile", size: 5 },
      { path: "a/link", type: "SymbolicLink", linkpath: "b.yaml" },
    ]);
    assert.equal(guard.totalEntries, 5);
    assert.equal(guard.totalBytes, 15);
  });

  it("refuses the archive root as anything but a directory", () => {
    assert.throws(() => check([{ path: "./", type: "File", size: 1 }]), /names the archive root/);
  });

  it("refuses Windows-style absolute paths", () => {
    assert.throws(() => check([{ path: "C:/Windows/x", type: "File" }]), /absolute path/);
    assert.throws(() => check([{ path: "\\\\server\\share", type: "File" }]), /absolute path/);
  });

  it("resolves symlink targets through earlier symlinks", () => {
    check([
      { path: "deep/er/", type: "Directory" },
      { path: "d", type: "SymbolicLink", linkpath: "deep/er" },
      { path: "ok", type: "SymbolicLink", linkpath: "d/../.." },
    ]);
    assert.throws(
      () =>
        check([
          { path: "deep/", type: "Directory" },
          { path: "d", type: "SymbolicLink", linkpath: "deep" },
          { path: "escape", type: "SymbolicLink", linkpath: "d/../.." },
        ]),
      /symlink "escape" -> "d\/\.\.\/\.\." points outside the artifact/,
    );
  });

  it("refuses a hardlink to a directory, a symlink or a path later replaced by a directory", () => {
    assert.throws(() => check([{ path: "d/", type: "Directory" }, { path: "h", type: "Link", linkpath: "d" }]), /does not point to a regular file/);
    assert.throws(
      () => check([{ path: "f", type: "File" }, { path: "s", type: "SymbolicLink", linkpath: "f" }, { path: "h", type: "Link", linkpath: "s" }]),
      /does not point to a regular file/,
    );
    assert.throws(
      () => check([{ path: "f", type: "File" }, { path: "f", type: "Directory" }, { path: "h", type: "Link", linkpath: "f" }]),
      /does not point to a regular file/,
    );
  });

  it("refuses an entry that replaces a symlink", () => {
    assert.throws(() => check([{ path: "s", type: "SymbolicLink", linkpath: "." }, { path: "s", type: "File" }]), /replaces the symlink/);
  });

  it("refuses with a terminal ArtifactFailed error", () => {
    assert.throws(
      () => check([{ path: "x", type: "GNUDumpDir" }]),
      (err: unknown) => err instanceof ArtifactError && err.terminal && err.reason === "ArtifactFailed" && /unsupported type GNUDumpDir/.test(err.message),
    );
  });
});
