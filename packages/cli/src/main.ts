// Commands are imported when chosen: `hsdo config` must not pay for loading the AWS SDK.
import yargs, { type Argv } from "yargs";
import { ConfigError, HsdoError, PreflightError, TerminalError, errorMessage } from "@hsdo/core";
import type { CommonArgs } from "./commands/common.ts";
import { hsdoVersion } from "./build-info.ts";

/** Exit statuses: 0 done, 1 runtime failure, 2 the user must change something (config, flags, environment). */
export const EXIT_USAGE = 2;

function common(y: Argv): Argv<CommonArgs> {
  return y
    .option("config", { type: "string", describe: "YAML configuration file (default: conf/hsdo.yaml when it exists)" })
    .option("hsdo-env", { type: "string", describe: "HSDO's env.yaml, layered below --config (default: conf/env.yaml when it exists)" })
    .option("debug", { alias: "d", type: "boolean", describe: "log debug events (also DEBUG=true)" })
    .option("log-level", { type: "string", describe: "least severe events logged: debug, info, warn or error (also logLevel, HSDO_LOG_LEVEL)" })
    .option("dry-run", { type: "boolean", describe: "server: show what it would publish; client: show the commands, send none" })
    .option("once", { type: "boolean", describe: "run one tick, then exit" })
    .option("pool", { type: "string", describe: "pool to serve or read (also HSDO_POOL)" })
    .option("set", { type: "string", array: true, describe: "override any key: --set server.drain=1m (repeatable)" }) as Argv<CommonArgs>;
}

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  let code = 0;
  const setCode = (c: number) => {
    code = c;
  };
  const cli = common(yargs(argv))
    .scriptName("hsdo")
    .usage(
      "hsdo: stable HAProxy server slots from AWS Auto Scaling, Consul or a file, through DynamoDB and the Runtime API\n\nUsage: hsdo --server | --client | --server --client | <command>",
    )
    .command(
      "$0",
      "run the server (--server), the client (--client), or both in one process",
      (y) =>
        y
          .option("server", { alias: "s", type: "boolean", describe: "run the server: list targets, keep slots, publish to DynamoDB (leader or standby)" })
          .option("client", { alias: "c", type: "boolean", describe: "run the client next to HAProxy: apply the slots through the Runtime API" }),
      async (args) => setCode(await (await import("./commands/run.ts")).runCommand(args, out)),
    )
    .command(
      "status",
      "the pool's slots, leader, generation and age, as a table",
      (y) => y.option("json", { type: "boolean", describe: "print JSON" }),
      async (args) => setCode(await (await import("./commands/status.ts")).statusCommand(args, out)),
    )
    .command(
      "table <action>",
      "manage the DynamoDB table (dev and embedded; production uses infra/)",
      (y) => y.positional("action", { choices: ["create"] as const, describe: "create: create the table when missing" }),
      async (args) => setCode(await (await import("./commands/table.ts")).tableCreateCommand(args, out)),
    )
    .command(
      "import-hsdo",
      "seed the pool from HSDO's DynamoDB table, every enabled HSDO slot at its own number (dry run unless --apply)",
      (y) =>
        y
          .option("table", { type: "string", demandOption: true, describe: "HSDO's table (its DYNAMODB_TABLE_NAME); only read, never written" })
          .option("apply", { type: "boolean", describe: "write the pool (takes the pool's lease; refuses while a server leads it)" })
          .option("force", { type: "boolean", describe: "replace a pool that already holds targets" }),
      async (args) => setCode(await (await import("./commands/import-hsdo.ts")).importHsdoCommand(args, out)),
    )
    .command(
      "config",
      "validate and print the effective configuration, with where each value came from",
      (y) =>
        y
          .option("json", { type: "boolean", describe: "print JSON" })
          .option("server", { alias: "s", type: "boolean", describe: "also check what --server needs" })
          .option("client", { alias: "c", type: "boolean", describe: "also check what --client needs" }),
      async (args) => setCode(await (await import("./commands/config.ts")).configCommand(args, out)),
    )
    .command(
      "haproxy-config",
      "print the backend/server-template lines (and fallback rule) matching the configuration",
      (y) =>
        y.option("haproxy-version", {
          type: "string",
          describe: "HAProxy version to advise for (e.g. 3.0); default: what client.socket's `show info` reports, if it answers",
        }),
      async (args) => setCode(await (await import("./commands/haproxy-config.ts")).haproxyConfigCommand(args, out)),
    )
    .example("SERVER_ASG_NAMES=web-a,web-b hsdo --server", "run the server on two Auto Scaling Groups")
    .example("hsdo --client --config /etc/hsdo/hsdo.yaml", "run the client beside HAProxy")
    .example("hsdo config", "show the effective configuration and its sources")
    .example("hsdo import-hsdo --table hsdo-legacy", "show how HSDO's table would seed the pool (then --apply)")
    .strict()
    .help()
    .alias("help", "h")
    .version("version", "print hsdo's version", hsdoVersion())
    .wrap(Math.min(110, process.stdout.columns || 110))
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new UsageError(msg);
    });
  try {
    await cli.parseAsync();
  } catch (err) {
    return reportError(err);
  }
  return code;
}

class UsageError extends HsdoError {}

/** One line for what the user can fix (exit 2), the stack only for bugs. */
export function reportError(err: unknown): number {
  // A loop ended for a reason the operator must see: reported as that reason alone would be.
  if (err instanceof TerminalError) return reportError(err.reason);
  if (err instanceof ConfigError || err instanceof PreflightError || err instanceof UsageError) {
    process.stderr.write(`hsdo: ${err.message}\n`);
    if (err instanceof UsageError) process.stderr.write("run `hsdo --help` for the commands and options\n");
    return EXIT_USAGE;
  }
  if (err instanceof HsdoError) {
    process.stderr.write(`hsdo: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(`hsdo: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : errorMessage(err)}\n`);
  return 1;
}
