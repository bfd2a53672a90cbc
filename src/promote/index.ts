export { PromotionEngine, type GateSubject, type GateVerdict, type PromotionOptions, type PromotionResult, type VerificationGate } from './engine.js';
export { Planner, imgpkgTag, attachedTag, type AttachedArtifacts, type PlanOptions, type PlanRequest, type PlannedArtifact, type PromotionPlan, type ArtifactKind } from './plan.js';
export { PlanExecutor, type CopyCounts, type ExecuteOptions, type Progress, type Phase } from './executor.js';
