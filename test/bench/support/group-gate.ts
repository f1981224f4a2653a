import {
  AssignerProtocol,
  Kafka,
  PartitionAssigners,
  logLevel,
  type Consumer,
  type PartitionAssigner,
} from 'kafkajs';

const { MemberAssignment, MemberMetadata } = AssignerProtocol;
/** In the gate's own member metadata, so that as the group's leader it can tell itself from the others. */
const GATE = Buffer.from('walpurge-bench-gate');

export interface GroupGate {
  /** Resolves when the partitions were handed to the `members` consumers. */
  readonly opened: Promise<void>;
  /** Leaves the group (the consumers rebalance among themselves). */
  close(): Promise<void>;
}

/**
 * Makes `members` consumers of a group start on a backlog at the same moment. The broker hands a new
 * group's partitions to the first consumer that joins (group.initial.rebalance.delay.ms is 0 on test
 * brokers), and a process joins a second or so after it was started: the first one would purge the
 * backlog alone. So this member joins first, and as the group's leader (the first member stays
 * leader while it is in the group) it computes every assignment: all partitions to itself, held
 * paused and never committed, until `members` others have joined; then to those others exactly as
 * they would share them on their own (kafkajs's round robin, the consumers' default and only
 * assigner), none to itself. The consumers run unchanged: they only wait in the group for their share.
 */
export async function openGroupGate(
  brokers: string[],
  groupId: string,
  topic: string,
  members: number,
): Promise<GroupGate> {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => (open = resolve));
  const gate: PartitionAssigner = (config) => {
    const roundRobin = PartitionAssigners.roundRobin(config);
    return {
      name: roundRobin.name,
      version: roundRobin.version,
      protocol: ({ topics }) => ({
        name: roundRobin.name,
        metadata: MemberMetadata.encode({ version: roundRobin.version, topics, userData: GATE }),
      }),
      async assign(group) {
        const isGate = (metadata: Buffer): boolean =>
          MemberMetadata.decode(metadata)?.userData.equals(GATE) ?? false;
        const self = group.members.find((m) => isGate(m.memberMetadata));
        const others = group.members.filter((m) => m !== self);
        if (self === undefined || others.length >= members) {
          // Consumers absent from the result are assigned nothing by the broker: the gate among them.
          const assigned = await roundRobin.assign({ members: others, topics: group.topics });
          open();
          return assigned;
        }
        const partitions = config.cluster.findTopicPartitionMetadata(topic).map((m) => m.partitionId);
        return [
          {
            memberId: self.memberId,
            memberAssignment: MemberAssignment.encode({
              version: roundRobin.version,
              assignment: { [topic]: partitions },
              userData: Buffer.alloc(0),
            }),
          },
        ];
      },
    };
  };
  const consumer: Consumer = new Kafka({ brokers, logLevel: logLevel.NOTHING }).consumer({
    groupId,
    partitionAssigners: [gate],
  });
  // Joined before any consumer starts: the first member is the leader.
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    // Holding, not reading: the fetched batch is dropped unresolved and uncommitted.
    eachBatch: async () => consumer.pause([{ topic }]),
  });
  await joined;
  return { opened, close: () => consumer.disconnect() };
}
