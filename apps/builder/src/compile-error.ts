export interface Diagnostic {
  /** Relative to the source root. */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  text: string;
}

export type CompileErrorReason = 'CompileFailed' | 'DependencyInstallFailed' | 'NoDefaultExport';

// The message lands in the Lambda's status condition: enough to fix the first problems, short enough to read.
const maxDiagnosticsInMessage = 10;

/**
 * A permanent build failure caused by the user's source: never retried. The message is one
 * human-readable block, "<file>:<line>:<col>: <text>" per diagnostic.
 */
export class CompileError extends Error {
  readonly diagnostics: Diagnostic[];
  readonly reason: CompileErrorReason;

  constructor(reason: CompileErrorReason, diagnostics: Diagnostic[]) {
    super(formatDiagnostics(diagnostics));
    this.name = 'CompileError';
    this.reason = reason;
    this.diagnostics = diagnostics;
  }
}

export function formatDiagnostic({ file, line, column, text }: Diagnostic): string {
  return `${file}:${line}:${column}: ${text}`;
}

function formatDiagnostics(diagnostics: Diagnostic[]): string {
  const shown = diagnostics.slice(0, maxDiagnosticsInMessage).map(formatDiagnostic);
  const hidden = diagnostics.length - shown.length;
  return [...shown, ...(hidden > 0 ? [`... and ${hidden} more`] : [])].join('\n');
}

/** A problem with a whole file rather than a place in it: points at its start. */
export function fileDiagnostic(file: string, text: string): Diagnostic {
  return { file, line: 1, column: 1, text };
}
