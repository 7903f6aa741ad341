/** Readiness of applied objects: kstatus rules, explicit checks, CEL expressions, the wait loop. */
export { computeStatus, observedGenerationLag, readyConditionStatus, type ComputeOptions } from "./kstatus.js";
export { HealthStatus, type StatusResult } from "./status.js";
export { activationFor, compileCelPredicate, type CelActivation, type CelPredicate, type PredicateOutcome } from "./cel.js";
export { compileHealthExprs, type CompiledHealthExpr } from "./health-exprs.js";
export {
  jobsWithTTL,
  planStageHealth,
  stageHealth,
  type HealthPlan,
  type HealthPlanInput,
  type LiveObjects,
  type ObjectHealth,
  type StageHealth,
} from "./evaluate.js";
export { objectId, describeRef, refOf, type ObjectRef } from "./refs.js";
export { DEFAULT_STAGE_TIMEOUT, resolveStageTimeout } from "./timeout.js";
export {
  MAX_LISTED_OBJECTS,
  systemClock,
  verifyStageHealth,
  waitForHealthy,
  type Clock,
  type VerifyOutcome,
  type VerifyStageOptions,
  type WaitOptions,
} from "./wait.js";
