export * from "./types.ts";
export * from "./schema.ts";
export * from "./load.ts";
export * from "./print.ts";
