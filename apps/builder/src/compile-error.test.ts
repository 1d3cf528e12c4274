import { describe, expect, it } from '@jest/globals';
import { CompileError, type Diagnostic } from './compile-error.ts';

function typeError(line: number): Diagnostic {
  return { file: 'index.ts', line, column: 7, text: "Type 'number' is not assignable to type 'string'." };
}

describe('CompileError', () => {
  it('puts one "file:line:col: text" line per diagnostic in its message', () => {
    const error = new CompileError('CompileFailed', [typeError(1), { file: 'lib/a.ts', line: 3, column: 1, text: 'Unexpected "}"' }]);
    expect(error.message).toBe("index.ts:1:7: Type 'number' is not assignable to type 'string'.\nlib/a.ts:3:1: Unexpected \"}\"");
    expect(error.reason).toBe('CompileFailed');
    expect(error.name).toBe('CompileError');
  });

  it('shows the first 10 diagnostics and counts the rest, keeping all of them on the error', () => {
    const diagnostics = Array.from({ length: 13 }, (_, index) => typeError(index + 1));
    const error = new CompileError('CompileFailed', diagnostics);
    const lines = error.message.split('\n');
    expect(lines).toHaveLength(11);
    expect(lines[9]).toMatch(/^index\.ts:10:7: /);
    expect(lines[10]).toBe('... and 3 more');
    expect(error.diagnostics).toEqual(diagnostics);
  });
});
