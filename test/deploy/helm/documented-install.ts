/**
 * The `helm install` command of a document (README.md, docs/deployment.md) as a Helm case: the
 * release, namespace and values its `--set` and `--set-json` flags give, so the chart tests render
 * what a reader would type. `-f` files are the reader's own (their rules): the chart's example
 * rules stand in for them.
 */
import type { Json, JsonObject } from '../../unit/deploy/kustomize.js';
import type { HelmCase } from './helm.js';

/** Words of a shell command line: whitespace-separated, '…' quoted, # starts a comment. */
function shellWords(line: string, where: string): string[] {
  const words: string[] = [];
  const pattern = /'([^']*)'|([^\s'#]+)|(#.*)|(\S)/g;
  let word: string | undefined;
  for (const match of line.matchAll(pattern)) {
    if (match[3] !== undefined) break;
    if (match[4] !== undefined)
      throw new Error(`${where}: cannot read ${JSON.stringify(match[4])} in ${line}`);
    const piece = match[1] ?? match[2] ?? '';
    // Adjacent pieces (key='value') form one word.
    const end = (match.index ?? 0) + match[0].length;
    word = (word ?? '') + piece;
    if (end >= line.length || /\s/.test(line.charAt(end))) {
      words.push(word);
      word = undefined;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** Like `--set a.b=value`: dotted path, value typed as Helm does for booleans. */
function setPath(values: JsonObject, path: string, value: Json): void {
  const keys = path.split('.');
  const last = keys.pop();
  if (last === undefined) throw new Error(`empty --set path`);
  let node = values;
  for (const key of keys) {
    const next = node[key];
    if (typeof next === 'object' && next !== null && !Array.isArray(next)) node = next;
    else node = node[key] = {};
  }
  node[last] = value;
}

function keyValue(flag: string, argument: string | undefined, where: string): [string, string] {
  const at = argument?.indexOf('=') ?? -1;
  if (argument === undefined || at < 1) throw new Error(`${where}: ${flag} needs key=value`);
  return [argument.slice(0, at), argument.slice(at + 1)];
}

/** The one `helm install` of a Markdown document, its continuation lines joined. */
export function documentedHelmInstall(markdown: string, where: string): Omit<HelmCase, 'id'> {
  const lines = markdown.split('\n');
  const starts = lines.flatMap((line, index) => (line.startsWith('helm install ') ? [index] : []));
  if (starts.length !== 1)
    throw new Error(`${where}: expected one helm install command, found ${starts.length}`);
  const words: string[] = [];
  for (let index = starts[0] ?? 0; index < lines.length; index += 1) {
    const line = lines[index] ?? '';
    const continued = /\\\s*$/.test(line);
    words.push(...shellWords(line.replace(/\\\s*$/, ''), where));
    if (!continued) break;
  }
  const [, , release, chart, ...flags] = words;
  if (!release || chart !== 'deploy/helm/walpurge')
    throw new Error(`${where}: helm install <release> deploy/helm/walpurge …`);
  const values: JsonObject = {};
  let namespace = 'default';
  for (let index = 0; index < flags.length; index += 1) {
    const flag = flags[index] ?? '';
    const argument = flags[index + 1];
    index += 1;
    if (flag === '--namespace' || flag === '-n') namespace = argument ?? namespace;
    else if (flag === '-f' || flag === '--values') continue;
    else if (flag === '--set') {
      const [key, value] = keyValue(flag, argument, where);
      setPath(values, key, value === 'true' ? true : value === 'false' ? false : value);
    } else if (flag === '--set-json') {
      const [key, value] = keyValue(flag, argument, where);
      setPath(values, key, JSON.parse(value) as Json);
    } else throw new Error(`${where}: helm install flag ${flag} is not understood by this test`);
  }
  return { release, namespace, values };
}
