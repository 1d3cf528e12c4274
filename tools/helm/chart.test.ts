// The chart as Helm itself reads it: helm built from the pinned module (tools/helm/build.sh).
import { describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import YAML from 'yaml';
import { helmBinary } from '@kublambda/dev-servers';
import { lambdaCrdPath } from '@kublambda/crd-types';

const chart = path.resolve(import.meta.dirname, '../../charts/kublambda');

async function helm(...args: string[]) {
  return execa(await helmBinary(), args, { reject: false });
}

describe('charts/kublambda', () => {
  it('passes helm lint --strict', async () => {
    const linted = await helm('lint', '--strict', chart);
    expect({ exitCode: linted.exitCode, output: linted.stdout + linted.stderr }).toEqual({ exitCode: 0, output: expect.stringContaining('1 chart(s) linted, 0 chart(s) failed') });
  });

  it('renders with its default values, the CRD included', async () => {
    const rendered = await helm('template', 'kublambda', chart, '--namespace', 'kublambda-system', '--include-crds');
    // Helm notes (on stderr) that the CRD is a link to libs/crd-types, the one source of truth.
    expect({ exitCode: rendered.exitCode, stderr: rendered.stderr }).toEqual({ exitCode: 0, stderr: expect.not.stringMatching(/error|warning/i) });
    const kinds = YAML.parseAllDocuments(rendered.stdout).map((document) => (document.toJSON() as { kind?: string } | null)?.kind).filter(Boolean);
    expect(kinds).toEqual(expect.arrayContaining(['CustomResourceDefinition', 'ClusterRole', 'Role']));
  });

  it('installs the CRD of libs/crd-types, not a copy that could drift', async () => {
    const rendered = await helm('template', 'kublambda', chart, '--namespace', 'kublambda-system', '--include-crds', '--show-only', 'crds/lambdas.kublambda.io.yaml');
    const fromChart = YAML.parseAllDocuments(rendered.stdout).map((document) => document.toJSON()).filter(Boolean);
    expect(fromChart).toEqual([YAML.parse(await readFile(lambdaCrdPath, 'utf8'))]);
  });
});
