/** What the user reads: numbered steps, the commands run (as `$ bundle-promoter …`), results and failures. */
export class Narrator {
  readonly #out: NodeJS.WritableStream;
  readonly #started = performance.now();
  #step = 0;

  constructor(out: NodeJS.WritableStream = process.stdout) {
    this.#out = out;
  }

  /** `==> 3. title  [4.2 s]`: the time since the demo started. */
  step(title: string): void {
    this.#step += 1;
    this.#write(`\n==> ${this.#step}. ${title}  [${this.elapsedSeconds()} s]\n`);
  }

  /** Seconds since the narrator was made, one decimal. */
  elapsedSeconds(): string {
    return ((performance.now() - this.#started) / 1000).toFixed(1);
  }

  /** An indented line of detail. */
  say(text: string): void {
    for (const line of text.split('\n')) this.#write(`    ${line}\n`);
  }

  /** A command as the user would type it in the demo directory. */
  command(args: readonly string[]): void {
    this.#write(`    $ bundle-promoter ${args.map(quote).join(' ')}\n`);
  }

  /** Output of a command, indented further. */
  output(text: string): void {
    for (const line of text.trimEnd().split('\n')) if (line !== '') this.#write(`      ${line}\n`);
  }

  ok(text: string): void {
    this.#write(`    ✓ ${text}\n`);
  }

  fail(text: string): void {
    this.#write(`\n!!  ${text.split('\n').join('\n    ')}\n`);
  }

  #write(text: string): void {
    this.#out.write(text);
  }
}

/** Shell-quotes an argument only when it needs it. */
function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}
