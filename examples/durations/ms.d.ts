// ms 2.1.3 ships no types: what this example uses of it.
declare module 'ms' {
  function ms(value: string): number | undefined;
  function ms(value: number, options?: { long?: boolean }): string;
  export default ms;
}
