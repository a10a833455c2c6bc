/**
 * One status line on a terminal, rewritten in place, with other messages printed above it. Every redraw returns
 * to the line's start and clears to its end ("\r", CSI K), and the line is cut to the terminal's width: a line
 * that wrapped could no longer be rewritten by "\r" and would smear down the screen.
 */
const CLEAR_TO_END = '\x1b[K';

export class StatusLine {
  /** What the line shows now; '' when there is none on screen. */
  #shown = '';

  constructor(
    private readonly write: (text: string) => void,
    private readonly columns: () => number,
  ) {}

  get shown(): string {
    return this.#shown;
  }

  /** Replaces the line's text. */
  show(text: string): void {
    this.#shown = text.slice(0, Math.max(10, this.columns() - 1));
    this.write(`\r${this.#shown}${CLEAR_TO_END}`);
  }

  /** Prints a message of its own line above the status line, which is drawn again below it. */
  print(message: string): void {
    if (this.#shown === '') {
      this.write(`${message}\n`);
      return;
    }
    this.write(`\r${message}${CLEAR_TO_END}\n${this.#shown}${CLEAR_TO_END}`);
  }

  /** Leaves the line on screen as it is and moves below it. */
  commit(): void {
    if (this.#shown === '') return;
    this.write('\n');
    this.#shown = '';
  }

  /** Removes the line (before someone else writes to the terminal). */
  clear(): void {
    if (this.#shown === '') return;
    this.write(`\r${CLEAR_TO_END}`);
    this.#shown = '';
  }
}
