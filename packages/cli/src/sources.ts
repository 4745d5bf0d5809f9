import type { Config, Logger } from "@hsdo/core";
import { AwsSource, ConsulSource, StaticSource, createAwsClients, type TargetSource } from "@hsdo/server";

/** The configured source, with its clients built the way the SDKs resolve them. */
export function buildSource(config: Config, log: Logger): TargetSource {
  const mode = config.server.mode;
  log.info("source", { mode });
  switch (mode) {
    case "aws":
      // AWS_REGION (the SDK's own) wins over `region` (HSDO's AWS_DEFAULT_REGION), as documented.
      // Waits between the SDK's attempts stay within one interval.
      return new AwsSource(
        config.server.aws,
        createAwsClients({ maxBackoffMs: config.intervalMs, ...(!process.env.AWS_REGION && config.region ? { region: config.region } : {}) }),
      );
    case "consul":
      return new ConsulSource(config.server.consul);
    case "static":
      return new StaticSource(config.server.static.file);
  }
}
