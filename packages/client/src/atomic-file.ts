import { mkdir, open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { randomBytes } from "node:crypto";

/**
 * Writes a file so that a reader (HAProxy at a reload, this client after a
 * crash) finds the old content or the new one, never half of one: a temp
 * file in the same directory, fsync, rename. The directory is created when
 * missing.
 */
export async function writeFileAtomic(file: string, body: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    const handle = await open(temp, "w", mode);
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
