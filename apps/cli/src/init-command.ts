// `kublambda init <name>`: a directory with a handler typed with @kublambda/lambda-api, a
// Lambda manifest without spec.source (deploy fills it from the files beside it) and a
// README line on how to deploy it. Never over an existing directory.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from './command-line.ts';
import { CommandError } from './kube-errors.ts';

export const INIT_TEMPLATES = ['http', 'watch'] as const;
export type InitTemplate = (typeof INIT_TEMPLATES)[number];

const NAME_PATTERN = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

const HTTP_HANDLER = `import type { Handler } from '@kublambda/lambda-api';

// Called for every HTTP request below the lambda's path; the path here is what follows it.
export default (async (request, context) => {
  const url = new URL(request.url);
  return Response.json({ hello: url.searchParams.get('name') ?? 'world', path: url.pathname, requestId: context.requestId });
}) satisfies Handler;
`;

const WATCH_HANDLER = `import { readResourceEvent, type Handler } from '@kublambda/lambda-api';

// Called with a CloudEvent for each change to the objects lambda.yaml's watch trigger names.
export default (async (request) => {
  const event = await readResourceEvent(request);
  console.log(\`\${event.type} \${event.subject}\`);
  return new Response(null, { status: 204 });
}) satisfies Handler;
`;

function manifest(name: string, template: InitTemplate): string {
  const triggers =
    template === 'http'
      ? `  triggers:
    http: {}                 # path /<namespace>/${name}; set path: or host: to choose
`
      : `  triggers:
    watch:
      - apiVersion: v1
        kind: ConfigMap
        labelSelector: app=${name}
        events: [ADDED, MODIFIED, DELETED]
`;
  return `# \`kublambda deploy ${name}\` applies this Lambda with spec.source.files taken from this
# directory (handler.ts, and a package.json for npm dependencies). Every field:
# kubectl explain lambda.spec
apiVersion: kublambda.io/v1alpha1
kind: Lambda
metadata:
  name: ${name}
spec:
  entrypoint: handler.ts
  build:
    typeCheck: true          # type errors fail the build, with file:line:col
${triggers}  memoryMiB: 128
  timeoutSeconds: 30
`;
}

function readme(name: string, template: InitTemplate): string {
  const call = template === 'http' ? `Then call it at the URL deploy prints (\`kublambda get ${name}\` shows it again).` : `Then label a ConfigMap \`app=${name}\` to call it.`;
  return `# ${name}

A Kublambda lambda (${template} trigger). Deploy it with:

    kublambda deploy ${name}

${call} \`kublambda describe ${name}\` shows its conditions and events.
`;
}

/** The files of a new lambda, by name. */
export function initFiles(name: string, template: InitTemplate): Record<string, string> {
  return { 'handler.ts': template === 'http' ? HTTP_HANDLER : WATCH_HANDLER, 'lambda.yaml': manifest(name, template), 'README.md': readme(name, template) };
}

export function checkLambdaName(name: string): void {
  if (name.length > 53 || !NAME_PATTERN.test(name)) {
    throw new UsageError(`"${name}" cannot name a Lambda: at most 53 characters of lowercase letters, digits and '-', starting with a letter and ending with a letter or digit`);
  }
}

/** Writes the directory under `parent`; returns its path. */
export async function runInit(name: string, template: InitTemplate, parent: string): Promise<string> {
  checkLambdaName(name);
  const dir = path.join(parent, name);
  try {
    // Not recursive: fails when the directory is there, so nothing of the user's is overwritten.
    await mkdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new CommandError(`${dir} already exists: init makes a new directory and never writes into one`);
    throw new CommandError(`creating ${dir}: ${(error as Error).message}`);
  }
  for (const [file, content] of Object.entries(initFiles(name, template))) await writeFile(path.join(dir, file), content, { flag: 'wx' });
  return dir;
}
