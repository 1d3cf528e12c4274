// The Dockerfile at the repository's root against SERVICE_IMAGES, the description the no-Docker
// assembler (platform-images.ts) builds from: every image's final stage must copy the same
// paths and start the same way, so the two cannot drift apart unnoticed. Docker is not run.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { imageLabels, NPM_LAUNCHER, NPM_LAUNCHER_PATH, NPM_PACKAGE_DIR, SERVICE_IMAGES, SERVICES, type ServiceImage } from './platform-images.ts';

const root = path.resolve(import.meta.dirname, '../..');
const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
const packageVersion = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;

interface Instruction {
  keyword: string;
  args: string;
  /** The body of a heredoc (`<<EOF ... EOF`), if the instruction has one. */
  heredoc?: string;
}

interface Stage {
  base: string;
  name: string;
  instructions: Instruction[];
}

/** Instructions by stage: comments and blank lines dropped, continuation lines joined, heredocs read. */
function parseDockerfile(text: string): Stage[] {
  const lines = text.split('\n');
  const stages: Stage[] = [];
  for (let index = 0; index < lines.length; index++) {
    let line = lines[index]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\')) line = `${line.slice(0, -1)} ${lines[++index]!.trim()}`;
    const [, keyword, args] = /^\s*(\S+)\s*(.*)$/.exec(line)!;
    const instruction: Instruction = { keyword: keyword!.toUpperCase(), args: args!.trim() };
    const heredoc = /<<-?'?"?([A-Z_]+)'?"?/.exec(instruction.args);
    if (heredoc) {
      const body: string[] = [];
      while (lines[++index] !== heredoc[1]) body.push(lines[index]!);
      instruction.heredoc = `${body.join('\n')}\n`;
      instruction.args = instruction.args.replace(heredoc[0], '').replace(/\s+/g, ' ').trim();
    }
    if (instruction.keyword === 'FROM') {
      const [, base, name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args)!;
      stages.push({ base: base!, name: name ?? String(stages.length), instructions: [] });
    } else if (instruction.keyword !== 'ARG' || stages.length > 0) {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

/** `A=1 B="x y"` (ENV and LABEL) as a record. */
function parsePairs(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/([^\s=]+)=("[^"]*"|\S*)/g)].map(([, name, value]) => [name!, value!.replace(/^"|"$/g, '')]));
}

/** A stage's COPYs as `[--from=stage] source... -> dest`, options other than --from dropped; heredocs as `<<heredoc -> dest`. */
function copiesOf(stage: Stage): string[] {
  return stage.instructions
    .filter((instruction) => instruction.keyword === 'COPY')
    .map((instruction) => {
      const words = instruction.args.split(' ');
      const from = words.find((word) => word.startsWith('--from='));
      const paths = words.filter((word) => !word.startsWith('--'));
      const sources = instruction.heredoc !== undefined ? ['<<heredoc'] : paths.slice(0, -1);
      return `${from ? `${from} ` : ''}${sources.join(' ')} -> ${paths.at(-1)}`;
    })
    .sort();
}

/** What the description says the stage must copy, in the Dockerfile's terms (its build stage works in /src). */
function expectedCopies(image: ServiceImage): string[] {
  const bundle = image.bundleFiles === 'modules' ? `/src/dist/apps/${image.app}/*.mjs` : `/src/dist/apps/${image.app}/`;
  return [
    '--from=runtime /runtime/ -> /',
    `--from=build ${bundle} -> ${image.appDir}/`,
    ...image.programs.map((program) => `--from=${path.basename(program)} /${path.basename(program)}/ -> /`),
    ...image.workspacePaths.map((workspacePath) => `--from=build /src/${workspacePath} -> /${workspacePath}`),
    ...(image.npm ? [`--from=build ${NPM_PACKAGE_DIR} -> ${NPM_PACKAGE_DIR}`, `<<heredoc -> ${NPM_LAUNCHER_PATH}`] : []),
  ].sort();
}

const stages = parseDockerfile(dockerfile);
const stageNamed = (name: string) => {
  const stage = stages.find((candidate) => candidate.name === name);
  if (!stage) throw new Error(`the Dockerfile has no stage ${name}`);
  return stage;
};
const last = (stage: Stage, keyword: string) => stage.instructions.filter((instruction) => instruction.keyword === keyword).at(-1);

describe('Dockerfile', () => {
  it('has a final stage, from scratch, for every image and for nothing else', () => {
    const finals = stages.filter((stage) => stage.base === 'scratch').map((stage) => stage.name);
    expect(finals.sort()).toEqual([...SERVICES].sort());
  });

  describe.each(SERVICES.map((service) => [service, SERVICE_IMAGES[service]] as const))('%s', (service, image) => {
    const stage = stageNamed(service);

    it('copies the paths the assembler puts in the image', () => {
      expect(copiesOf(stage)).toEqual(expectedCopies(image));
    });

    it('sets the same entrypoint, environment and user', () => {
      expect(JSON.parse(last(stage, 'ENTRYPOINT')!.args)).toEqual(image.entrypoint);
      expect(Object.assign({}, ...stage.instructions.filter((instruction) => instruction.keyword === 'ENV').map((instruction) => parsePairs(instruction.args)))).toEqual(image.env);
      expect(last(stage, 'USER')?.args).toBe(image.user);
      expect(stage.instructions.some((instruction) => instruction.keyword === 'CMD')).toBe(false);
    });

    it('labels the image as the assembler does, revision and source from build arguments', () => {
      const labels = Object.assign({}, ...stage.instructions.filter((instruction) => instruction.keyword === 'LABEL').map((instruction) => parsePairs(instruction.args)));
      expect(labels).toEqual(imageLabels(service, { revision: '${REVISION}', source: '${SOURCE}', version: '${VERSION}' }));
      const args = stage.instructions.filter((instruction) => instruction.keyword === 'ARG').map((instruction) => instruction.args);
      expect(args.sort()).toEqual(['REVISION', 'SOURCE', `VERSION=${packageVersion}`]);
    });

    if (image.npm) {
      it('writes the same npm launcher, executable', () => {
        const launcher = stage.instructions.find((instruction) => instruction.heredoc !== undefined)!;
        expect(launcher.heredoc).toBe(NPM_LAUNCHER);
        expect(launcher.args).toContain('--chmod=755');
      });
    }
  });

  it('collects each program the images copy, with its libraries, in a stage named after it', () => {
    const programs = new Set(SERVICES.flatMap((service) => SERVICE_IMAGES[service].programs));
    for (const program of programs) {
      const run = stageNamed(path.basename(program)).instructions.filter((instruction) => instruction.keyword === 'RUN').map((instruction) => instruction.args).join(' ');
      expect(run).toContain(`cp --parents ${program} /${path.basename(program)}/`);
      expect(run).toContain(`ldd ${program}`);
    }
  });

  it('puts the pinned Node and its libraries in the runtime stage, with a /tmp anyone may write to', () => {
    const run = stageNamed('runtime').instructions.filter((instruction) => instruction.keyword === 'RUN').map((instruction) => instruction.args).join(' ');
    expect(run).toContain(`cp /src/node_modules/node/bin/node /runtime${SERVICE_IMAGES.runner.entrypoint[0]}`);
    expect(run).toContain('ldd /src/node_modules/node/bin/node');
    expect(run).toContain('chmod 1777 /runtime/tmp');
  });
});
