import { isIP } from "node:net";

/**
 * Which addresses can never be a target, whatever a source or a table item
 * says. Pure, no I/O. `isIpLiteral` (validate.ts) answers "can HAProxy parse
 * this as a server address"; this answers "may hsdo send client traffic
 * there". A registration at 169.254.169.254 would otherwise make every
 * HAProxy node proxy its clients to its own instance metadata service.
 */

/** Why an address is never a target: its range, and what lives there. */
export interface AddressClass {
  /** `loopback` is the only kind a configuration can allow (allowLoopback, for local setups). */
  kind: "loopback" | "link-local" | "unspecified" | "this-network" | "multicast" | "broadcast" | "reserved" | "aws-reserved";
  /** e.g. "link-local (the instance metadata service lives there)". */
  reason: string;
}

const REASONS: Record<AddressClass["kind"], string> = {
  loopback: "loopback (this HAProxy node itself)",
  "link-local": "link-local (the instance metadata service lives there)",
  unspecified: "unspecified (HAProxy reads it as the client's original destination: a loop back to itself)",
  "this-network": 'in 0.0.0.0/8 ("this network", not a host)',
  multicast: "multicast (not a host)",
  broadcast: "the broadcast address (not a host)",
  reserved: "in reserved 240.0.0.0/4 (not a host)",
  "aws-reserved": "in fd00:ec2::/32, AWS's instance services (the IPv6 instance metadata service lives there)",
};

function classOf(kind: AddressClass["kind"]): AddressClass {
  return { kind, reason: REASONS[kind] };
}

/** The 4 or 16 bytes of an IP literal (zone id dropped), or undefined for anything else. */
export function ipBytes(value: string): number[] | undefined {
  const bare = value.split("%")[0]!;
  const family = isIP(bare);
  if (family === 4) return bare.split(".").map(Number);
  if (family !== 6) return undefined;
  let text = bare.toLowerCase();
  let tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = dotted[1]!.split(".").map(Number);
    tail = v4;
    // The dotted quad stands for two groups: keep their place with one placeholder pair.
    text = `${text.slice(0, -dotted[1]!.length)}0:0`;
  }
  const [head, rest] = text.includes("::") ? text.split("::") : [text, undefined];
  const groups = (s: string | undefined) => (s ? s.split(":").filter((g) => g !== "") : []);
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const zeros = rest === undefined ? 0 : 8 - left.length - right.length;
  const all = [...left, ...Array<string>(zeros).fill("0"), ...right].map((g) => parseInt(g, 16));
  const bytes = all.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes.length === 16 ? bytes : undefined;
}

function classifyV4(b: readonly number[]): AddressClass | undefined {
  const [a, c] = [b[0]!, b[1]!];
  if (b.every((x) => x === 0)) return classOf("unspecified");
  if (a === 0) return classOf("this-network");
  if (a === 127) return classOf("loopback");
  if (a === 169 && c === 254) return classOf("link-local");
  if (a >= 224 && a <= 239) return classOf("multicast");
  if (b.every((x) => x === 255)) return classOf("broadcast");
  if (a >= 240) return classOf("reserved");
  return undefined;
}

function classifyV6(b: readonly number[]): AddressClass | undefined {
  const zeroUpTo = (n: number) => b.slice(0, n).every((x) => x === 0);
  if (zeroUpTo(16)) return classOf("unspecified");
  if (zeroUpTo(15) && b[15] === 1) return classOf("loopback");
  // ::ffff:a.b.c.d (IPv4-mapped) reaches the IPv4 address itself; so does 64:ff9b::a.b.c.d through a NAT64 gateway.
  if (zeroUpTo(10) && b[10] === 0xff && b[11] === 0xff) return classifyV4(b.slice(12));
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b.slice(4, 12).every((x) => x === 0)) return classifyV4(b.slice(12));
  if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return classOf("link-local");
  if (b[0] === 0xff) return classOf("multicast");
  if (b[0] === 0xfd && b[1] === 0x00 && b[2] === 0x0e && b[3] === 0xc2) return classOf("aws-reserved");
  return undefined;
}

/** The range that makes `value` never a target, or undefined when it may be one (or is no IP literal at all). */
export function addressClass(value: string): AddressClass | undefined {
  const b = ipBytes(value);
  if (!b) return undefined;
  return b.length === 4 ? classifyV4(b) : classifyV6(b);
}
