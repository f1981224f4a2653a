// cluster-key-slot (a dependency of ioredis) ships no types; this is its whole API.
declare module 'cluster-key-slot' {
  function calculateSlot(key: string | Buffer): number;
  namespace calculateSlot {
    function generateMulti(keys: Array<string | Buffer>): number;
  }
  export default calculateSlot;
}
