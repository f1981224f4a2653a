export { rowTargetsFromRules, type RowTargets } from './row-targets.js';
