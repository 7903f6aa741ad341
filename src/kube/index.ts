/**
 * The controller runtime: a REST client with impersonation and discovery,
 * watch-backed informers, a work queue, leader election and an event
 * recorder. See each module for details.
 */
export * from "./client.js";
export * from "./errors.js";
export * from "./events.js";
export * from "./informer.js";
export * from "./kubeconfig.js";
export * from "./leader-election.js";
export * from "./workqueue.js";
export { backoffDelay, withJitter, sleep, type BackoffPolicy } from "./backoff.js";
export { VERBS, WRITE_VERBS } from "./transport.js";
export { groupVersionPath, parseApiVersion } from "./discovery.js";
