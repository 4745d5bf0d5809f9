export * from "./errors.ts";
export * from "./clock.ts";
export * from "./model.ts";
export * from "./validate.ts";
export * from "./sleep.ts";
