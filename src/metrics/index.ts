// The only entry into src/metrics. prom-client stays behind this line.
export {
  Metrics,
  VERIFICATION_REASON_LABELS,
  statusCodeLabel,
  verificationReasonLabel,
  type CopyCounts,
  type MetricsOptions,
  type PromotionLabels,
  type PromotionResult,
  type QueueCounts,
  type QueueState,
  type ReconcileResult,
  type VerificationResult,
  type VerificationStage,
} from './metrics.js';
export { parseListen, startHttpServer, type HttpServer, type HttpServerOptions, type Readiness } from './http-server.js';
