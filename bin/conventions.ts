/**
 * What every command of the program shares and people expect of a Unix command: `--version`, usage errors that exit 2
 * (the README's table) with a pointer to the command's help, and help that fits an 80-column terminal. bin/cli.ts
 * applies it once to the whole program, after every command is added.
 */
import { CommanderError, type Command } from 'commander';
import pkg from '../package.json' with { type: 'json' };
import { EXIT } from '../client/cli-options.ts';

/** Help wraps at the terminal's width, but never wider than 80 columns (nor unwrapped when piped). */
export const HELP_WIDTH = 80;

/** `snapferry client add`: the words a person types to reach this command. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c !== null; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function walk(cmd: Command, visit: (cmd: Command) => void): void {
  visit(cmd);
  for (const sub of cmd.commands) walk(sub, visit);
}

const width = (stream: NodeJS.WriteStream) => Math.min(stream.isTTY ? (stream.columns ?? HELP_WIDTH) : HELP_WIDTH, HELP_WIDTH);

/**
 * Commander's own exits (help, version, its usage errors) become a thrown CommanderError that `exitCodeOf` reads, so
 * that the exit code is chosen where every other one is, and an unknown option exits 2, not commander's 1.
 */
export function applyConventions(program: Command): void {
  program.version(pkg.version, '-V, --version', "print snapferry's version");
  walk(program, (cmd) => {
    cmd.exitOverride();
    cmd.configureOutput({
      getOutHelpWidth: () => width(process.stdout),
      getErrHelpWidth: () => width(process.stderr),
      // Commander's message, then where the right usage is: the whole help after every typo buries the message.
      outputError: (str, write) => write(`snapferry: ${str}(see \`${commandPath(cmd)} --help\`)\n`),
    });
    // The list of subcommands shows each one's name only, so that its description has room to wrap.
    cmd.configureHelp({ subcommandTerm: (sub) => sub.name() });
  });
}

/** The exit code of a CommanderError (help and --version: 0; its usage errors: 2), or null for any other error. */
export function exitCodeOf(err: unknown): number | null {
  if (!(err instanceof CommanderError)) return null;
  return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
}
