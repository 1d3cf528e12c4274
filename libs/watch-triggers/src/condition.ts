import { celEnv, CelScalar, isCelError, mapType, parse, plan } from '@bufbuild/cel';
import type { Expr, ParsedExpr } from '@bufbuild/cel-spec/cel/expr/syntax_pb.js';

// A watch trigger's condition: a CEL expression over {type, object, oldObject}, compiled once
// (in api-controller, to report mistakes in status before anything runs; in the watcher, to
// evaluate it on every event). JSON numbers arrive as CEL doubles: `int(object.spec.replicas) > 2`.

/** The variables a condition sees. */
export interface ConditionInput {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Record<string, unknown>;
  /** The object before this change (MODIFIED, DELETED); null for ADDED. */
  oldObject: Record<string, unknown> | null;
}

export type ConditionVerdict = { matched: boolean } | { matched: false; error: string };

export type CompiledCondition =
  | { ok: true; evaluate(input: ConditionInput): ConditionVerdict }
  | { ok: false; message: string };

const VARIABLES = ['type', 'object', 'oldObject'] as const;
const env = celEnv({
  variables: { type: CelScalar.STRING, object: mapType(CelScalar.STRING, CelScalar.DYN), oldObject: CelScalar.DYN },
});

/**
 * Compiles a condition. Refused: syntax errors, names other than type/object/oldObject, and
 * expressions whose operators cannot apply to their operands' types (found by evaluating it
 * once over an empty object, where only such mistakes can fail), and results that are not bool.
 */
export function compileCondition(source: string): CompiledCondition {
  let parsed: ParsedExpr & { expr: Expr };
  try {
    parsed = parse(source);
  } catch (error) {
    return { ok: false, message: (error as Error).message.replace(/^<input>:/, '') };
  }
  const position = positionsOf(source, parsed);
  const unknown = undeclaredNames(parsed.expr);
  if (unknown) return { ok: false, message: `${position(unknown.id)}: undeclared reference to '${unknown.name}' (a condition sees ${VARIABLES.join(', ')})` };
  const run = plan(env, parsed);
  // Every field access fails on an empty object, so what fails here for another reason is a
  // mistake in the expression itself, whatever object comes.
  for (const type of ['ADDED', 'MODIFIED', 'DELETED'] as const) {
    const trial = run({ type, object: {}, oldObject: {} });
    if (isCelError(trial)) {
      if (/no matching overload|no such overload|unsupported/i.test(trial.message)) {
        return { ok: false, message: `${position(trial.exprId)}: ${trial.message}` };
      }
    } else if (typeof trial !== 'boolean') {
      return { ok: false, message: `the condition must be true or false, but it gives ${describeType(trial)}` };
    }
  }
  return {
    ok: true,
    evaluate: (input) => {
      // Plain JSON objects are CEL maps at run time; the declared input types know only Map.
      const result = run({ type: input.type, object: input.object as never, oldObject: input.oldObject as never });
      if (isCelError(result)) return { matched: false, error: result.message };
      if (typeof result !== 'boolean') return { matched: false, error: `the condition gave ${describeType(result)}, not true or false` };
      return { matched: result };
    },
  };
}

function describeType(value: unknown): string {
  if (typeof value === 'bigint') return 'an int';
  if (typeof value === 'number') return 'a double';
  if (value === null) return 'null';
  if (Array.isArray(value) || (typeof value === 'object' && value !== null && Symbol.iterator in value)) return 'a list or map';
  return `a ${typeof value}`;
}

/** "line:column" of an expression id, from the parser's source positions. */
function positionsOf(source: string, parsed: ParsedExpr): (id: bigint | undefined) => string {
  const offsets = parsed.sourceInfo?.positions ?? {};
  return (id) => {
    const offset = id === undefined ? undefined : (offsets as Record<string, number>)[id.toString()];
    if (offset === undefined) return '1:1';
    const before = source.slice(0, offset).split('\n');
    return `${before.length}:${before.at(-1)!.length + 1}`;
  };
}

/** The first identifier that is neither a variable nor bound by a macro (all, exists, map, filter). */
function undeclaredNames(root: Expr): { name: string; id: bigint } | undefined {
  const walk = (expr: Expr | undefined, bound: ReadonlySet<string>): { name: string; id: bigint } | undefined => {
    if (!expr) return undefined;
    const kind = expr.exprKind;
    switch (kind.case) {
      case 'identExpr':
        return VARIABLES.includes(kind.value.name as never) || bound.has(kind.value.name) ? undefined : { name: kind.value.name, id: expr.id };
      case 'selectExpr':
        return walk(kind.value.operand, bound);
      case 'callExpr':
        for (const inner of [kind.value.target, ...kind.value.args]) {
          const found = walk(inner, bound);
          if (found) return found;
        }
        return undefined;
      case 'listExpr':
        for (const inner of kind.value.elements) {
          const found = walk(inner, bound);
          if (found) return found;
        }
        return undefined;
      case 'structExpr':
        for (const entry of kind.value.entries) {
          const found = (entry.keyKind.case === 'mapKey' ? walk(entry.keyKind.value, bound) : undefined) ?? walk(entry.value, bound);
          if (found) return found;
        }
        return undefined;
      case 'comprehensionExpr': {
        const c = kind.value;
        const inner = new Set([...bound, c.iterVar, c.iterVar2, c.accuVar].filter(Boolean));
        return walk(c.iterRange, bound) ?? walk(c.accuInit, bound) ?? walk(c.loopCondition, inner) ?? walk(c.loopStep, inner) ?? walk(c.result, inner);
      }
      default:
        return undefined;
    }
  };
  return walk(root, new Set());
}
