import { test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:http";
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  paginateDescribeAutoScalingGroups,
  type AutoScalingGroup,
} from "@aws-sdk/client-auto-scaling";
import { DescribeInstancesCommand, EC2Client, paginateDescribeInstances } from "@aws-sdk/client-ec2";
import { instanceId, startFakeAws, type FakeAws } from "./aws.ts";

function clients(fake: FakeAws) {
  const config = {
    endpoint: fake.url,
    region: "eu-west-1",
    credentials: { accessKeyId: "AKIAFAKE", secretAccessKey: "fake" },
    maxAttempts: 1,
  };
  return { asg: new AutoScalingClient(config), ec2: new EC2Client(config) };
}

test("the SDK's own paginators round-trip NextToken through the fake, for both services", async (t) => {
  const fake = await startFakeAws();
  t.after(() => fake.stop());
  const { asg, ec2 } = clients(fake);
  t.after(() => (asg.destroy(), ec2.destroy()));
  for (const g of ["g1", "g2", "g3"]) {
    const base = Number(g.slice(1)) * 10;
    fake.setGroup(g, [0, 1].map((n) => ({ id: instanceId(base + n), ip: `10.0.${base}.${n + 1}`, az: "eu-west-1a", launchTime: 0 })));
  }
  fake.setPageSize({ groups: 2, instances: 4 });

  const groups: AutoScalingGroup[] = [];
  for await (const page of paginateDescribeAutoScalingGroups({ client: asg }, { AutoScalingGroupNames: ["g1", "g2", "g3"] })) {
    groups.push(...(page.AutoScalingGroups ?? []));
  }
  assert.deepEqual(groups.map((g) => g.AutoScalingGroupName), ["g1", "g2", "g3"]);
  assert.equal(fake.count("DescribeAutoScalingGroups"), 2);
  const second = fake.calls.filter((c) => c.action === "DescribeAutoScalingGroups")[1];
  assert.ok(second?.params.NextToken, "the second page was asked with the token of the first");

  const ips: string[] = [];
  for await (const page of paginateDescribeInstances({ client: ec2 }, {})) {
    for (const r of page.Reservations ?? []) ips.push(...(r.Instances ?? []).map((i) => i.PrivateIpAddress ?? "?"));
  }
  assert.equal(ips.length, 6);
  assert.equal(fake.count("DescribeInstances"), 2);
  assert.deepEqual(fake.protocolErrors, []);
});

test("a token replayed with other parameters is refused, as AWS does", async (t) => {
  const fake = await startFakeAws();
  t.after(() => fake.stop());
  const { asg } = clients(fake);
  t.after(() => asg.destroy());
  fake.setGroup("g1", []);
  fake.setGroup("g2", []);
  fake.setPageSize({ groups: 1 });
  const first = await asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ["g1", "g2"] }));
  assert.ok(first.NextToken);
  await assert.rejects(
    asg.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: ["g2"], NextToken: first.NextToken })),
    { name: "InvalidNextToken" },
  );
});

test("EC2 refuses MaxResults with InstanceIds and names unknown ids, like the real service", async (t) => {
  const fake = await startFakeAws();
  t.after(() => fake.stop());
  const { ec2 } = clients(fake);
  t.after(() => ec2.destroy());
  fake.setGroup("g", [{ id: instanceId(1), ip: "10.0.0.1", az: "eu-west-1a", launchTime: 0 }]);
  await assert.rejects(ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId(1)], MaxResults: 5 })), {
    name: "InvalidParameterCombination",
  });
  await assert.rejects(ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId(1), instanceId(9)] })), {
    name: "InvalidInstanceID.NotFound",
    message: `The instance ID '${instanceId(9)}' does not exist`,
  });
});

test("an unknown Action or an unsigned request is refused loudly and recorded", async (t) => {
  const fake = await startFakeAws();
  t.after(() => fake.stop());
  const post = (body: string, headers: Record<string, string>) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(fake.url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", ...headers } }, (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on("error", reject);
      req.end(body);
    });
  const signed = { authorization: "AWS4-HMAC-SHA256 Credential=AKIAFAKE/20250101/eu-west-1/autoscaling/aws4_request, SignedHeaders=host, Signature=00" };
  const unknown = await post("Action=DeleteAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName=g", signed);
  assert.equal(unknown.status, 400);
  assert.match(unknown.text, /<Code>InvalidAction<\/Code>/);
  const unsigned = await post("Action=DescribeAutoScalingGroups&Version=2011-01-01", {});
  assert.equal(unsigned.status, 403);
  assert.equal(fake.protocolErrors.length, 2);
  assert.match(fake.protocolErrors[0] ?? "", /unsupported Action "DeleteAutoScalingGroup"/);
});
