// @hsdo/testkit: the test beds every package's tests and test/ share (dynalite,
// HAProxy, hsdo processes, the store's raw access, fakes of AWS and Consul).
// Private and a devDependency only: nothing in a package's src imports it
// outside its tests.
export * from "./client.ts";
export * from "./dynalite.ts";
export * from "./haproxy.ts";
export * from "./hsdo.ts";
export * from "./pool.ts";
export * from "./ports.ts";
export * from "./proc.ts";
export * from "./publisher.ts";
export * from "./store.ts";
export * from "./wait.ts";
export * from "./fakes/aws.ts";
export * from "./fakes/consul.ts";
export * from "./env.ts";
export * from "./relay.ts";
export * from "./hsdo-table.ts";
export * from "./random.ts";
