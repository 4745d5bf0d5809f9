import { watch, type FSWatcher } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { ConfigError, SourceError, errorMessage, type Target } from "@hsdo/core";
import { parseStaticTargets } from "./static-parse.ts";
import type { TargetSource } from "./types.ts";

const SOURCE = "static";

/**
 * Targets from a YAML file (see static-parse.ts), re-read when it changes.
 * Change is seen two ways: fs.watch on the directory (editors replace files
 * by rename, which a watch on the file itself misses) and the file's
 * mtime/ctime/size/inode on every list(), for file systems where watching
 * does not work. A file that does not parse throws, every time, until fixed.
 */
export class StaticSource implements TargetSource {
  readonly name = SOURCE;
  private cached: { signature: string; outcome: Target[] | SourceError } | undefined;
  private dirty = true;
  private watcher: FSWatcher | undefined;
  private closed = false;

  constructor(private readonly file: string) {
    if (!file) throw new ConfigError("server.static.file", file, "is empty (expected the path of a YAML file of targets)");
  }

  async list(): Promise<Target[]> {
    this.watch();
    const signature = await this.signature();
    if (this.dirty || this.cached?.signature !== signature) {
      this.dirty = false;
      this.cached = { signature, outcome: await this.read() };
    }
    const { outcome } = this.cached;
    if (outcome instanceof SourceError) throw outcome;
    return outcome.map((t) => ({ ...t }));
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
  }

  private async read(): Promise<Target[] | SourceError> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      return new SourceError(SOURCE, `${this.file}: cannot read: ${errorMessage(err)}`, { cause: err });
    }
    const parsed = parseStaticTargets(text);
    return parsed.ok ? parsed.targets : new SourceError(SOURCE, `${this.file}: ${parsed.problems.join("; ")}`);
  }

  private async signature(): Promise<string> {
    try {
      const s = await stat(this.file);
      return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
    } catch (err) {
      throw new SourceError(SOURCE, `${this.file}: cannot read: ${errorMessage(err)}`, { cause: err });
    }
  }

  private watch(): void {
    if (this.watcher || this.closed) return;
    const name = basename(this.file);
    try {
      this.watcher = watch(dirname(this.file), { persistent: false }, (_event, changed) => {
        if (changed === null || changed === name) this.dirty = true;
      });
      // A watch that breaks (directory removed, inotify limits) leaves the stat check on each list().
      this.watcher.on("error", () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      this.watcher = undefined;
    }
  }
}
