import path from 'node:path';
import ts from 'typescript';
import { CompileError, type Diagnostic } from './compile-error.ts';

// The workspace's node_modules/@types and the lambda API's types: three levels up from
// apps/builder/src, and equally from dist/apps/builder where the app is bundled.
const workspaceRoot = path.resolve(import.meta.dirname, '../../..');
const typeRoots = [path.join(workspaceRoot, 'node_modules/@types')];
/** What lambdas import: types (erased by the bundler) and the few values the bundler includes. */
export const lambdaApi = path.join(workspaceRoot, 'libs/lambda-api/src/index.ts');

// Matches what the bundler accepts: extensionless, .js and .ts relative imports, JSON imports, and
// per-file compilation (isolatedModules flags what esbuild cannot compile file by file).
const compilerOptions: ts.CompilerOptions = {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  target: ts.ScriptTarget.ES2024,
  lib: ['lib.es2024.d.ts'],
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  allowImportingTsExtensions: true,
  allowJs: true,
  resolveJsonModule: true,
  isolatedModules: true,
  jsx: ts.JsxEmit.Preserve,
  types: ['node'],
  typeRoots,
  paths: { '@kublambda/lambda-api': [lambdaApi] },
};

// TypeScript's lib files and the workspace's @types never change while the builder runs; parsing
// them dominates a check (about 300 ms against 20 ms), so they are parsed once per process.
const sharedDirectories = [path.dirname(ts.getDefaultLibFilePath(compilerOptions)), ...typeRoots, path.dirname(lambdaApi)].map((dir) => dir + path.sep);
const sharedSourceFiles = new Map<string, ts.SourceFile>();

/** Type-checks the entrypoint and everything it imports; throws a CompileError listing the errors in the user's files. */
export function checkTypes(sourceRoot: string, entrypoint: string): void {
  const program = ts.createProgram({ rootNames: [path.join(sourceRoot, entrypoint)], options: compilerOptions, host: createCompilerHost() });
  requireValidConfiguration(program);
  const diagnostics = program
    .getSourceFiles()
    .filter((file) => isUserFile(sourceRoot, file.fileName))
    .flatMap((file) => [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)].map((diagnostic) => toDiagnostic(sourceRoot, file, diagnostic)));
  if (diagnostics.length > 0) throw new CompileError('CompileFailed', diagnostics);
}

function createCompilerHost(): ts.CompilerHost {
  const host = ts.createCompilerHost(compilerOptions);
  const parse = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, onError, shouldCreateNewSourceFile) => {
    if (!sharedDirectories.some((dir) => fileName.startsWith(dir))) return parse(fileName, languageVersion, onError, shouldCreateNewSourceFile);
    const cached = sharedSourceFiles.get(fileName) ?? parse(fileName, languageVersion, onError);
    if (cached) sharedSourceFiles.set(fileName, cached);
    return cached;
  };
  return host;
}

/** Problems without a file come from our options or our lib files, never from the user's source. */
function requireValidConfiguration(program: ts.Program): void {
  const problems = [...program.getOptionsDiagnostics(), ...program.getGlobalDiagnostics()];
  if (problems.length === 0) return;
  const text = problems.map((problem) => ts.flattenDiagnosticMessageText(problem.messageText, '\n')).join('\n');
  throw new Error(`the type checker is misconfigured: ${text}`);
}

function isUserFile(sourceRoot: string, fileName: string): boolean {
  return fileName.startsWith(sourceRoot + path.sep) && !path.relative(sourceRoot, fileName).split(path.sep).includes('node_modules');
}

function toDiagnostic(sourceRoot: string, file: ts.SourceFile, diagnostic: ts.Diagnostic): Diagnostic {
  const { line, character } = file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
  const text = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
  return { file: path.relative(sourceRoot, file.fileName), line: line + 1, column: character + 1, text };
}
