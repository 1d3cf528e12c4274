import { describe, expect, it } from '@jest/globals';
import type { ListPage } from '@kublambda/lambda-api';
import { UsageError } from './command-line.ts';
import { formatStatePage, parseStateArgs, runStateCommand, type StateArgs } from './state-command.ts';

const args = (overrides: Partial<StateArgs> = {}) => ({ lambda: 'shop', table: 'orders', namespace: 'prod', output: 'text' as const, ...overrides });

describe('parseStateArgs', () => {
  it('takes the lambda, the table and the paging options', () => {
    expect(parseStateArgs(['shop', 'orders', '-n', 'prod', '--limit', '5', '--cursor', 'b3JkZXI', '--prefix', 'order/', '-o', 'json'])).toEqual({
      lambda: 'shop', table: 'orders', namespace: 'prod', limit: 5, cursor: 'b3JkZXI', prefix: 'order/', output: 'json',
    });
    expect(parseStateArgs(['shop', 'orders'])).toEqual({ lambda: 'shop', table: 'orders', output: 'text' });
  });

  it.each([
    [[], 'expected <lambda> <table>, got 0 arguments'],
    [['shop'], 'expected <lambda> <table>, got 1 argument'],
    [['shop', 'orders', 'extra'], 'expected <lambda> <table>, got 3 arguments'],
    [['shop', 'orders', '--limit', '0'], '--limit must be a whole number from 1 to 1000, not "0"'],
    [['shop', 'orders', '--limit', 'ten'], '--limit must be a whole number from 1 to 1000, not "ten"'],
    [['shop', 'orders', '-o', 'yaml'], '--output must be text or json, not "yaml"'],
    [['shop', 'orders', '--colour'], /Unknown option '--colour'/],
  ])('refuses %j', (argv, message) => {
    expect(() => parseStateArgs(argv)).toThrow(UsageError);
    expect(() => parseStateArgs(argv)).toThrow(message);
  });
});

describe('formatStatePage', () => {
  const page: ListPage = {
    entries: [
      { key: 'order/1', value: { total: 12 }, version: 3 },
      { key: 'with space', value: 'x'.repeat(200), version: 12, expiresAt: Date.UTC(2030, 0, 2, 3, 4, 5) },
    ],
    cursor: 'b3JkZXIvMQ',
  };

  it('shows one aligned line per entry, long values shortened, and the command for the next page', () => {
    expect(formatStatePage(page, args({ prefix: 'a b', limit: 2 })).split('\n')).toEqual([
      'KEY           VERSION  EXPIRES                   VALUE',
      'order/1       3        -                         {"total":12}',
      `"with space"  12       2030-01-02T03:04:05.000Z  "${'x'.repeat(119)}… (202 bytes; -o json shows it all)`,
      '',
      "more: kublambda state shop orders -n prod --prefix 'a b' --limit 2 --cursor b3JkZXIvMQ",
    ]);
  });

  it('says when there is nothing to show', () => {
    expect(formatStatePage({ entries: [] }, args())).toBe('no entries');
    expect(formatStatePage({ entries: [], cursor: 'eg' }, args({ cursor: 'ZQ' }))).toBe('no entries on this page\n\nmore: kublambda state shop orders -n prod --cursor eg');
  });
});

describe('runStateCommand', () => {
  const page: ListPage = { entries: [{ key: 'k', value: 1, version: 1 }] };
  const deps = (declared: string[] | undefined, asked: unknown[] = []) => ({
    declaredTables: async () => declared,
    list: async (...request: unknown[]) => (asked.push(request), page),
  });

  it('lists the table the lambda declares, with the paging options', async () => {
    const asked: unknown[] = [];
    expect(await runStateCommand(args({ limit: 5, prefix: 'p', output: 'json' }), deps(['orders'], asked))).toBe(JSON.stringify(page, null, 2));
    expect(asked).toEqual([['prod', 'orders', { prefix: 'p', limit: 5, cursor: undefined }]]);
  });

  it('refuses a table the lambda does not declare, naming those it does, without reading state', async () => {
    const asked: unknown[] = [];
    await expect(runStateCommand(args(), deps(['visits', 'carts'], asked))).rejects.toThrow('Lambda prod/shop does not declare the state table "orders": it declares "visits", "carts"');
    await expect(runStateCommand(args(), deps([], asked))).rejects.toThrow('it declares none (spec.stateTables)');
    await expect(runStateCommand(args(), deps(undefined, asked))).rejects.toThrow('Lambda "shop" not found in namespace "prod"');
    expect(asked).toEqual([]);
  });
});
