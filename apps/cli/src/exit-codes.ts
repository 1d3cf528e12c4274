// The `kublambda` command's exit codes, one list for the code, `--help` and the README.

export const EXIT_OK = 0;
/** The command ran and failed: an API error, a build failure, a Lambda that is not there. */
export const EXIT_FAILED = 1;
/** The command line could not be run: unknown command or option, a bad value. */
export const EXIT_USAGE = 2;
/** deploy: not Ready within --wait-seconds; delete: still there after --wait-seconds. */
export const EXIT_TIMEOUT = 3;

export const EXIT_CODES_HELP = `exit codes:
  0  done
  1  failed (API error, build failure, lambda not found, not allowed)
  2  bad command line
  3  timed out: deploy not Ready, or delete not gone, within --wait-seconds`;
