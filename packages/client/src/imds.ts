import { PreflightError, errorMessage, isSafeName } from "@hsdo/core";

export const IMDS_BASE_URL = "http://169.254.169.254";

export interface ImdsOptions {
  /** Where the instance metadata service answers; tests point it at a local fake. */
  baseUrl?: string;
  /** Bound of each of the two requests. Default 1000 ms: off EC2 nothing answers, and start-up must not hang. */
  timeoutMs?: number;
}

/**
 * This node's availability zone from the EC2 instance metadata service,
 * IMDSv2 (a session token first, then the metadata read with it). Used when
 * `client.az` is "auto". Throws PreflightError saying what to set instead.
 */
export async function readAvailabilityZone(options: ImdsOptions = {}): Promise<string> {
  const base = (options.baseUrl ?? IMDS_BASE_URL).replace(/\/+$/, "");
  const timeoutMs = options.timeoutMs ?? 1000;
  const fail = (what: string, cause?: unknown): never => {
    throw new PreflightError(
      `client.az is "auto" but this node's AZ could not be read from the EC2 instance metadata service at ${base}: ${what}; ` +
        "set client.az to the AZ name when not on EC2 or when IMDSv2 is disabled",
      cause === undefined ? undefined : { cause },
    );
  };

  let token: string;
  try {
    const res = await fetch(`${base}/latest/api/token`, {
      method: "PUT",
      headers: { "X-aws-ec2-metadata-token-ttl-seconds": "60" },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) fail(`token request answered HTTP ${res.status}`);
    token = (await res.text()).trim();
  } catch (err) {
    if (err instanceof PreflightError) throw err;
    return fail(`token request failed: ${errorMessage(err)}`, err);
  }
  if (token === "") fail("empty session token");

  let az: string;
  try {
    const res = await fetch(`${base}/latest/meta-data/placement/availability-zone`, {
      headers: { "X-aws-ec2-metadata-token": token },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!res.ok) fail(`availability-zone request answered HTTP ${res.status}`);
    az = (await res.text()).trim();
  } catch (err) {
    if (err instanceof PreflightError) throw err;
    return fail(`availability-zone request failed: ${errorMessage(err)}`, err);
  }
  const shown = JSON.stringify(az.slice(0, 60));
  if (!isSafeName(az)) fail(`answer ${shown} is not an AZ name`);
  return az;
}
