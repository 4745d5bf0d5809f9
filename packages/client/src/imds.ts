import { MetadataService } from "@aws-sdk/ec2-metadata-service";
import { PreflightError, errorMessage, isSafeName } from "@hsdo/core";

export const IMDS_BASE_URL = "http://169.254.169.254";

export interface ImdsOptions {
  /**
   * Where the instance metadata service answers (the library's `endpoint`);
   * default AWS_EC2_METADATA_SERVICE_ENDPOINT, else 169.254.169.254. Tests
   * point it at a local fake.
   */
  baseUrl?: string;
  /** Bound of each request. Default 1000 ms: off EC2 nothing answers, and start-up must not hang. */
  timeoutMs?: number;
}

/**
 * This node's availability zone from the EC2 instance metadata service,
 * through the SDK's @aws-sdk/ec2-metadata-service, IMDSv2: a session token
 * first, then the metadata read with it (two steps, so a failure says which
 * one). Used when `client.az` is "auto". Throws PreflightError saying what to
 * set instead.
 */
export async function readAvailabilityZone(options: ImdsOptions = {}): Promise<string> {
  const base = (options.baseUrl ?? process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT ?? IMDS_BASE_URL).replace(/\/+$/, "");
  const timeoutMs = options.timeoutMs ?? 1000;
  const fail = (what: string, cause?: unknown): never => {
    throw new PreflightError(
      `client.az is "auto" but this node's AZ could not be read from the EC2 instance metadata service at ${base}: ${what}; ` +
        "set client.az to the AZ name when not on EC2 or when IMDSv2 is disabled",
      cause === undefined ? undefined : { cause },
    );
  };
  // The token is fetched by hand (fetchMetadataToken) and handed to request(): the library's own fetch
  // would fall back to IMDSv1 on a refused token, and hide which step failed. One retry each, 100 ms apart.
  const service = new MetadataService({
    endpoint: base,
    httpOptions: { timeout: timeoutMs },
    disableFetchToken: true,
    ec2MetadataV1Disabled: false,
    retries: 1,
    backoff: 0.1,
    tokenTtl: 60,
  });
  const status = (err: unknown) => /status code (\d{3})/.exec(errorMessage(err))?.[1];

  let token: string;
  try {
    token = (await service.fetchMetadataToken()).trim();
  } catch (err) {
    const code = status(err);
    return fail(code ? `token request answered HTTP ${code}` : `token request failed: ${errorMessage(err)}`, err);
  }
  if (token === "") fail("empty session token");

  let az: string;
  try {
    // The library joins the endpoint's path ("/") and this one.
    az = (await service.request("latest/meta-data/placement/availability-zone", { headers: { "x-aws-ec2-metadata-token": token } })).trim();
  } catch (err) {
    const code = status(err);
    return fail(code ? `availability-zone request answered HTTP ${code}` : `availability-zone request failed: ${errorMessage(err)}`, err);
  }
  const shown = JSON.stringify(az.slice(0, 60));
  if (!isSafeName(az)) fail(`answer ${shown} is not an AZ name`);
  return az;
}
