import { KafkaConfig } from './kafka.js';
import { InspectConfig } from './inspect.js';

type Problem = { path: PropertyKey[]; message: string };

const field = (section: unknown, name: string): unknown =>
  section && typeof section === 'object' ? (section as Record<string, unknown>)[name] : undefined;

/**
 * The observer's consumer group must be its own. Joining the invalidators' group (or one of their
 * CDN lanes' groups, `<kafka.consumerGroup>-cdn-<provider>`) would take partitions away from them:
 * the events it is handed are only read, never purged, and their offsets committed past them.
 * Works on raw input, with the schema's defaults for what is left out.
 */
export function inspectGroupProblems(config: Record<string, unknown>): Problem[] {
  const inspect = config['inspect'];
  if (!inspect || typeof inspect !== 'object') return [];
  const configured = field(inspect, 'consumerGroup');
  const group = configured ?? InspectConfig.shape.consumerGroup.parse(undefined);
  const invalidators =
    field(config['kafka'], 'consumerGroup') ?? KafkaConfig.shape.consumerGroup.parse(undefined);
  if (typeof group !== 'string' || typeof invalidators !== 'string') return [];
  const lanes = `${invalidators}-cdn-`;
  if (group !== invalidators && !group.startsWith(lanes)) return [];
  const whose =
    group === invalidators
      ? `the invalidators' group (kafka.consumerGroup)`
      : `a CDN lane's group (${lanes}<provider>)`;
  return [
    {
      path: ['inspect', 'consumerGroup'],
      message: `'${group}' is ${whose}: the observer would take partitions from it and their purges would be lost; give the observer its own group`,
    },
  ];
}
