export { createInspector, type Inspector, type InspectorOptions } from './create-inspector.js';
export { Observer, type ObserverOptions } from './observer.js';
export { createInspectMetrics, type InspectMetrics } from './metrics.js';
export { InspectReport, nines, type Inconsistency } from './report/inspect-report.js';
export { renderReport } from './report/render-report.js';
export { createRowPool } from './check/row-pool.js';
export { readChangesSince, type ReadProgress } from './source/read-since.js';
export { decodeMessages } from './source/kafka-source.js';
