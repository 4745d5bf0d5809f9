export * from "./step.ts";
export * from "./server.ts";
export * from "./sources/index.ts";
