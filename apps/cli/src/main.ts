// The `kublambda` command. Unfinished: only help exists so far; every other command says so.
const commands: Record<string, string> = {
  up: 'start the local all-in-one platform',
  deploy: 'create or update a Lambda from a source file',
  invoke: 'call a lambda over HTTP',
  get: 'list lambdas with their status',
  logs: "show a lambda's logs",
  builds: 'show the build queue',
  state: "list a lambda's state table",
  delete: 'delete a lambda',
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return ['usage: kublambda <command> [arguments]', '', 'commands:', ...Object.entries(commands).map(([c, what]) => `  ${c.padEnd(width)}  ${what}`)].join('\n');
}

const [command] = process.argv.slice(2);
if (!command || command === 'help' || command === '--help' || command === '-h') {
  console.log(usage());
} else if (command in commands) {
  console.error(`kublambda ${command}: not implemented yet`);
  process.exitCode = 2;
} else {
  console.error(`kublambda: unknown command "${command}"\n\n${usage()}`);
  process.exitCode = 1;
}
